#pragma once
// StreamArchive: downloads one archive through the shared transport and feeds its bytes to a
// BookProcessor on the calling thread while the download is still arriving — download and
// decryption overlap, and the encrypted archive never touches the disk.
//
// The transport's event thread does nothing but append each received chunk to a buffer (one
// copy); the caller's thread swaps the buffer out and decrypts it. If the caller falls more than
// `max_buffered` bytes behind, the transfer is paused (libcurl stops reading the socket) until it
// catches up, so a slow consumer costs no memory. If the transport restarts the body (a retry
// after a cut-off download), the processor is discarded and a fresh one is opened with `open`.
//
//   auto r = StreamArchive(transport, grin->ArchiveRequest(barcode, {}), open_processor);
//   if (r.ok()) -> r->response (status, headers) and r->processor (Write() fed every byte; call
//                  Finish() yourself after checking the response)
//
// Errors: the processor's own Write() error (the transfer is aborted at once), or the open
// callback's error. The HTTP outcome is NOT judged here: check `response` (GrinClient's
// CheckArchiveResponse) before Finish().
//
// Thread safety: call from any thread except the transport's; blocks until the transfer ends.

#include <cstdint>
#include <functional>
#include <memory>

#include "engine/archive/book.h"
#include "engine/archive/sink.h"
#include "engine/base/result.h"
#include "engine/net/transport.h"

namespace grin::pipeline {

struct StreamedArchive {
  net::Response response;  // body empty: it went to the processor (or the raw sink)
  std::unique_ptr<archive::BookProcessor> processor;  // fed the whole body (of the last attempt)
  std::unique_ptr<archive::ByteSink> raw;  // instead of processor (StreamArchiveTo): fed the same
  int64_t bytes_fed = 0;
};

// Where StreamArchiveTo's open() sends a body, decided from its response head: to a processor
// (decrypted as it arrives), or as it is to a raw sink (e.g. a staging file). Exactly one set.
struct BodyTarget {
  std::unique_ptr<archive::BookProcessor> processor;
  std::unique_ptr<archive::ByteSink> raw;
};
using OpenTargetFn = std::function<Result<BodyTarget>(const net::Response& head)>;

// Opens the processor for a body about to be fed. `head` has the response's status and headers
// (its body is empty), so the caller can size itself from Content-Length or refuse the body: an
// error fails the stream with it and aborts the transfer.
using OpenProcessorFn =
    std::function<Result<std::unique_ptr<archive::BookProcessor>>(const net::Response& head)>;

// `request.sink` is replaced. max_buffered: bytes received but not yet decrypted before the
// transfer pauses.
Result<StreamedArchive> StreamArchive(net::Transport* transport, net::Request request,
                                      const OpenProcessorFn& open,
                                      size_t max_buffered = 4 << 20);

// The same, except that open() chooses per attempt where the body goes (BodyTarget): one GET
// can be decrypted in memory or written to disk as it is, decided when its head arrives. A
// restarted body (transport retry) calls open() again, which must start its target afresh.
Result<StreamedArchive> StreamArchiveTo(net::Transport* transport, net::Request request,
                                        const OpenTargetFn& open, size_t max_buffered = 4 << 20);

}  // namespace grin::pipeline
