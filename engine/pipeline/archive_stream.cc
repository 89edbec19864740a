#include "engine/pipeline/archive_stream.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <utility>

namespace grin::pipeline {
namespace {

// The consumer is woken when this much has arrived (or the transfer ended).
constexpr size_t kWakeBytes = 256 << 10;
// Chunk buffers up to this size are kept for the thread's next archive.
constexpr size_t kKeepBytes = 1 << 20;

// What the transport thread and the consuming thread share.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::string buf;          // received, not yet consumed
  uint64_t generation = 0;  // bumped when the transport restarts the body
  bool paused = false;      // the body callback refused bytes; Resume() after draining
  bool abort = false;       // the consumer failed: refuse the rest
  bool done = false;
  net::Response head;  // status and headers of the attempt whose body is arriving
  net::Response response;
};

}  // namespace

Result<StreamedArchive> StreamArchive(net::Transport* transport, net::Request request,
                                      const OpenProcessorFn& open, size_t max_buffered) {
  return StreamArchiveTo(
      transport, std::move(request),
      [&open](const net::Response& head) -> Result<BodyTarget> {
        GRIN_ASSIGN_OR_RETURN(auto processor, open(head));
        return BodyTarget{std::move(processor), nullptr};
      },
      max_buffered);
}

Result<StreamedArchive> StreamArchiveTo(net::Transport* transport, net::Request request,
                                        const OpenTargetFn& open, size_t max_buffered) {
  // The two chunk buffers circulate between the transport and this thread; they are kept per
  // thread for the next archive so their pages are not faulted in again for every book.
  thread_local std::string spare_a, spare_b;
  auto ch = std::make_shared<Channel>();
  ch->buf = std::move(spare_a);
  ch->buf.clear();
  const size_t wake_bytes = std::min(kWakeBytes, std::max<size_t>(1, max_buffered / 2));
  request.sink = net::ResponseSink::Callback(
      [ch, max_buffered, wake_bytes](const char* data, size_t len) -> size_t {
        std::lock_guard<std::mutex> l(ch->mu);
        if (ch->abort) return net::kBodyAbort;
        if (!ch->buf.empty() && ch->buf.size() + len > max_buffered) {
          ch->paused = true;
          ch->cv.notify_one();
          return net::kBodyPause;
        }
        size_t before = ch->buf.size();
        ch->buf.append(data, len);
        // Wake the consumer once per kWakeBytes, not per chunk: fewer thread switches.
        if (before < wake_bytes && ch->buf.size() >= wake_bytes) ch->cv.notify_one();
        return len;
      },
      [ch]() {
        std::lock_guard<std::mutex> l(ch->mu);
        ch->buf.clear();
        ++ch->generation;
        ch->cv.notify_one();
        return true;
      });
  request.sink.on_start = [ch](int status, const net::Headers& headers) {
    std::lock_guard<std::mutex> l(ch->mu);
    ch->head.http_status = status;
    ch->head.headers = headers;
  };
  net::RequestId id = transport->Submit(std::move(request), [ch](net::Response r) {
    std::lock_guard<std::mutex> l(ch->mu);
    ch->response = std::move(r);
    ch->done = true;
    ch->cv.notify_one();
  });

  StreamedArchive out;
  Status failure;  // the first consumer-side error
  uint64_t generation = 0;
  bool opened = false;
  net::Response head;  // what open() is given
  std::string chunk = std::move(spare_b);
  chunk.clear();
  for (;;) {
    bool resume = false, finished = false, restart = false;
    {
      std::unique_lock<std::mutex> l(ch->mu);
      ch->cv.wait(l, [&] {
        return ch->buf.size() >= wake_bytes || ch->paused || ch->done ||
               ch->generation != generation;
      });
      if (ch->generation != generation) {
        generation = ch->generation;
        restart = true;
      } else {
        chunk.swap(ch->buf);
        ch->buf.clear();
        if (!opened && !chunk.empty()) head = ch->head;
        resume = std::exchange(ch->paused, false);
        finished = ch->done && chunk.empty();
      }
    }
    if (restart) {
      out.processor.reset();
      out.raw.reset();
      out.bytes_fed = 0;
      opened = false;
      continue;
    }
    if (finished) break;
    if (resume) transport->Resume(id);
    if (!failure.ok() || chunk.empty()) continue;
    if (!opened) {
      auto p = open(head);
      if (!p.ok()) {
        failure = p.status();
      } else if ((p->processor == nullptr) == (p->raw == nullptr)) {
        failure = Status::Internal("open() must give a processor or a raw sink");
      } else {
        out.processor = std::move(p->processor);
        out.raw = std::move(p->raw);
        opened = true;
      }
    }
    if (failure.ok()) {
      const auto* data = reinterpret_cast<const uint8_t*>(chunk.data());
      failure = out.processor ? out.processor->Write(data, chunk.size())
                              : out.raw->Write(data, chunk.size());
      out.bytes_fed += static_cast<int64_t>(chunk.size());
    }
    if (!failure.ok()) {
      {
        std::lock_guard<std::mutex> l(ch->mu);
        ch->abort = true;
        ch->buf.clear();
        ch->paused = false;
      }
      transport->Resume(id);  // a paused transfer must run on to meet the abort (else harmless)
    }
    chunk.clear();
  }
  {
    std::lock_guard<std::mutex> l(ch->mu);  // done: the transport no longer touches ch
    out.response = std::move(ch->response);
    if (ch->buf.capacity() <= kKeepBytes) spare_a = std::move(ch->buf);
  }
  if (chunk.capacity() <= kKeepBytes) spare_b = std::move(chunk);
  if (!failure.ok()) return failure;
  if (!opened && out.response.ToStatus().ok()) {
    // An empty body: the processor still judges it (an empty message is not a valid archive).
    GRIN_ASSIGN_OR_RETURN(BodyTarget t, open(out.response));  // its body went nowhere: empty
    if ((t.processor == nullptr) == (t.raw == nullptr)) {
      return Status::Internal("open() must give a processor or a raw sink");
    }
    out.processor = std::move(t.processor);
    out.raw = std::move(t.raw);
  }
  return out;
}

}  // namespace grin::pipeline
