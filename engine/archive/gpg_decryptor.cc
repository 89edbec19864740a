// The gpg backend: `gpg --decrypt` through pipes, driven from the caller's thread with poll().
//
// Child descriptors: 0 ciphertext in, 1 plaintext out, 2 diagnostics, 3 passphrase (written
// once and closed), 4 --status-fd. Nothing touches disk except gpg's empty keybox in GNUPGHOME.

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "engine/archive/decryptor_internal.h"
#include "engine/base/subprocess.h"

namespace grin::archive::internal {
namespace {

constexpr size_t kReadChunk = 1 << 20;
// 1 MiB data pipes: with the 64 KiB default, a 50 MiB book cost ~3x the CPU of gpg writing to a
// file, most of it in wake-ups (measured 2026-11-28, docs/benchmarks.md).
constexpr size_t kDataPipeBytes = 1 << 20;
constexpr size_t kCoalesceBytes = 128 * 1024;
constexpr long kCoalesceNanos = 300'000;  // ~350 KiB of gpg output at its bulk rate
constexpr size_t kMaxStatusBytes = 64 * 1024;
constexpr size_t kStderrTail = 2048;

// A private GNUPGHOME for the whole process, removed at exit.
class ProcessGnupgHome {
 public:
  static Result<std::string> Get() {
    static ProcessGnupgHome home;
    std::call_once(home.once_, [&] {
      const char* base = std::getenv("TMPDIR");
      std::string tmpl = std::string(base && *base ? base : "/tmp") + "/grin-gnupg-XXXXXX";
      if (::mkdtemp(tmpl.data()) != nullptr) home.path_ = tmpl;  // mkdtemp makes it 0700
    });
    if (home.path_.empty()) return Status::Internal("cannot create a private GNUPGHOME");
    return home.path_;
  }
  ~ProcessGnupgHome() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }

 private:
  std::once_flag once_;
  std::string path_;
};

enum Fd { kIn = 0, kOut = 1, kErr = 2, kPass = 3, kStatus = 4 };

class GpgDecryptor final : public Decryptor {
 public:
  GpgDecryptor(Subprocess child, ByteSink* sink, uint64_t max_plaintext)
      : child_(std::move(child)), sink_(sink), max_plaintext_(max_plaintext), buf_(kReadChunk) {}

  ~GpgDecryptor() override { child_.Kill(); }

  DecryptBackend backend() const override { return DecryptBackend::kGpg; }

  Status Write(const uint8_t* data, size_t n) override {
    if (!failure_.ok()) return failure_;
    if (finished_) return Status::FailedPrecondition("Write after Finish");
    ScopedSigpipeBlock no_sigpipe;
    Status s = Pump(data, n, /*closing=*/false);
    if (!s.ok()) Fail(s);
    return failure_;
  }

  Status Finish() override {
    if (finished_) return verdict_;
    finished_ = true;
    if (!failure_.ok()) {
      child_.Kill();
      verdict_ = failure_;
      return verdict_;
    }
    {
      ScopedSigpipeBlock no_sigpipe;
      fds()[kIn].Reset();  // EOF for gpg
      Status s = Pump(nullptr, 0, /*closing=*/true);
      if (!s.ok()) {
        child_.Kill();
        verdict_ = s;
        return verdict_;
      }
    }
    Result<int> ws = child_.Wait();
    if (!ws.ok()) {
      verdict_ = ws.status();
      return verdict_;
    }
    verdict_ = GpgVerdict({status_, *ws, stderr_tail_});
    return verdict_;
  }

 private:
  std::vector<UniqueFd>& fds() { return child_.parent_fds(); }

  void Fail(Status s) {
    if (failure_.ok()) failure_ = std::move(s);
    child_.Kill();
  }

  // Moves data until all n input bytes are written (closing=false), or until every output pipe
  // reached EOF (closing=true). Output is drained while input is written, so gpg never blocks
  // on a full stdout while we block on its full stdin.
  Status Pump(const uint8_t* data, size_t n, bool closing) {
    while (true) {
      std::array<pollfd, 3> pfd{};
      int npfd = 0;
      int idx_in = -1, idx_out = -1, idx_err = -1, idx_status = -1;
      bool want_in = !closing && n > 0 && fds()[kIn].valid();
      if (!closing && n == 0) return Status();
      if (want_in) {
        idx_in = npfd;
        pfd[npfd++] = {fds()[kIn].get(), POLLOUT, 0};
      }
      // stdout, stderr and status share the remaining slots; poll them in a separate array.
      std::array<pollfd, 3> rd{};
      int nrd = 0;
      if (fds()[kOut].valid()) {
        idx_out = nrd;
        rd[nrd++] = {fds()[kOut].get(), POLLIN, 0};
      }
      if (fds()[kErr].valid()) {
        idx_err = nrd;
        rd[nrd++] = {fds()[kErr].get(), POLLIN, 0};
      }
      if (fds()[kStatus].valid()) {
        idx_status = nrd;
        rd[nrd++] = {fds()[kStatus].get(), POLLIN, 0};
      }
      if (closing && nrd == 0) return Status();
      std::array<pollfd, 4> all{};
      int nall = 0;
      for (int i = 0; i < npfd; ++i) all[nall++] = pfd[i];
      for (int i = 0; i < nrd; ++i) all[nall++] = rd[i];
      int rc = ::poll(all.data(), static_cast<nfds_t>(nall), -1);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return Status::Internal(std::string("poll: ") + strerror(errno));
      }
      int off = npfd;
      if (idx_out >= 0 && all[off + idx_out].revents) {
        size_t got = 0;
        GRIN_RETURN_IF_ERROR(DrainOut(&got));
        // gpg writes its output 4 KiB at a time. Waking for each write costs more CPU than the
        // decryption itself, so when a wake-up yields little and we have no input to hand over,
        // let the 1 MiB pipe fill for a moment (gpg keeps running meanwhile).
        bool input_pending = idx_in >= 0 && (all[idx_in].revents & POLLOUT);
        if (got > 0 && got < kCoalesceBytes && !input_pending && fds()[kOut].valid()) {
          struct timespec pause = {0, kCoalesceNanos};
          ::nanosleep(&pause, nullptr);
        }
      }
      if (idx_status >= 0 && all[off + idx_status].revents) DrainText(kStatus);
      if (idx_err >= 0 && all[off + idx_err].revents) DrainText(kErr);
      if (idx_in >= 0 && all[idx_in].revents) {
        if (all[idx_in].revents & (POLLERR | POLLHUP)) {
          // gpg stopped reading (bad passphrase, corrupt packet): the verdict will say why.
          fds()[kIn].Reset();
          return EarlyExitVerdict();
        }
        ssize_t w = ::write(fds()[kIn].get(), data, n);
        if (w > 0) {
          data += w;
          n -= static_cast<size_t>(w);
        } else if (w < 0 && errno == EPIPE) {
          fds()[kIn].Reset();
          return EarlyExitVerdict();
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          return Status::Internal(std::string("write to gpg: ") + strerror(errno));
        }
      }
    }
  }

  // gpg quit before taking all input: finish reading its status to name the reason (always an
  // error: a message cannot be valid if gpg stopped reading it).
  Status EarlyExitVerdict() {
    for (int i = 0; i < 100 && fds()[kStatus].valid(); ++i) {
      pollfd p = {fds()[kStatus].get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) break;
      DrainText(kStatus);
    }
    for (int i = 0; i < 20 && fds()[kErr].valid(); ++i) {
      pollfd p = {fds()[kErr].get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) break;
      DrainText(kErr);
    }
    return GpgVerdict({status_, /*wait_status=*/1 << 8, stderr_tail_});
  }

  Status DrainOut(size_t* got) {
    while (true) {
      ssize_t r = ::read(fds()[kOut].get(), buf_.data(), buf_.size());
      if (r > 0) {
        *got += static_cast<size_t>(r);
        plaintext_ += static_cast<uint64_t>(r);
        if (max_plaintext_ && plaintext_ > max_plaintext_) {
          return Status::ResourceExhausted("plaintext exceeds the limit of " +
                                           std::to_string(max_plaintext_) + " bytes");
        }
        GRIN_RETURN_IF_ERROR(sink_->Write(buf_.data(), static_cast<size_t>(r)));
        continue;
      }
      if (r == 0) {
        fds()[kOut].Reset();
        return Status();
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Status();
      return Status::Internal(std::string("read from gpg: ") + strerror(errno));
    }
  }

  void DrainText(int which) {
    char tmp[4096];
    while (true) {
      ssize_t r = ::read(fds()[which].get(), tmp, sizeof tmp);
      if (r > 0) {
        if (which == kStatus) {
          if (status_.size() < kMaxStatusBytes) status_.append(tmp, static_cast<size_t>(r));
        } else {
          stderr_tail_.append(tmp, static_cast<size_t>(r));
          if (stderr_tail_.size() > kStderrTail) {
            stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
          }
        }
        continue;
      }
      if (r == 0) fds()[which].Reset();
      if (r < 0 && errno == EINTR) continue;
      return;
    }
  }

  Subprocess child_;
  ByteSink* sink_;
  uint64_t max_plaintext_;
  std::vector<uint8_t> buf_;
  uint64_t plaintext_ = 0;
  std::string status_;
  std::string stderr_tail_;
  Status failure_;
  Status verdict_;
  bool finished_ = false;
};

// The last non-empty line of gpg's stderr, for context.
std::string LastLine(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

Status GpgVerdict(const GpgVerdictInput& in) {
  bool begin = false, okay = false, goodmdc = false, failed = false, badmdc = false,
       end = false, bad_passphrase = false, no_data = false, nomdc = false, plaintext = false;
  int mdc_method = -1, aead_algo = 0;
  std::istringstream lines(in.status_text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string prefix = "[GNUPG:] ";
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream words(line.substr(prefix.size()));
    std::string kw;
    words >> kw;
    if (kw == "BEGIN_DECRYPTION") begin = true;
    else if (kw == "DECRYPTION_OKAY") okay = true;
    else if (kw == "GOODMDC") goodmdc = true;
    else if (kw == "BADMDC") badmdc = true;
    else if (kw == "DECRYPTION_FAILED") failed = true;
    else if (kw == "END_DECRYPTION") end = true;
    else if (kw == "NODATA") no_data = true;
    else if (kw == "PLAINTEXT") plaintext = true;
    else if (kw == "BAD_PASSPHRASE" || kw == "MISSING_PASSPHRASE") bad_passphrase = true;
    else if (kw == "DECRYPTION_INFO") {
      words >> mdc_method;
      int sym = 0;
      words >> sym;
      if (!(words >> aead_algo)) aead_algo = 0;
    } else if (kw == "ERROR") {
      std::string where, code;
      words >> where >> code;
      if (code.find("BAD_PASSPHRASE") != std::string::npos) bad_passphrase = true;
      if (where.find("nomdc") != std::string::npos) nomdc = true;
    }
  }
  bool exited_ok = WIFEXITED(in.wait_status) && WEXITSTATUS(in.wait_status) == 0;
  bool integrity = goodmdc || aead_algo != 0;
  if (exited_ok && begin && okay && integrity && end && !failed && !badmdc) return Status();

  std::string detail = LastLine(in.stderr_tail);
  auto with_detail = [&](std::string msg) {
    return detail.empty() ? msg : msg + " (gpg: " + detail + ")";
  };
  if (bad_passphrase) return Status::PermissionDenied(with_detail("wrong passphrase"));
  if (nomdc || mdc_method == 0) {
    return Status::DataLoss(with_detail("message has no integrity protection (MDC); refused"));
  }
  if (badmdc) return Status::DataLoss(with_detail("integrity check (MDC) failed: data corrupt"));
  if (!begin && plaintext) {
    return Status::DataLoss(with_detail("input is not encrypted (plain OpenPGP data); refused"));
  }
  if (no_data || !begin) {
    return Status::DataLoss(with_detail("not an OpenPGP encrypted message, or truncated header"));
  }
  if (okay && !integrity) {
    return Status::DataLoss(with_detail("no integrity verdict from gpg; refused"));
  }
  if (WIFSIGNALED(in.wait_status)) {
    return Status::Internal("gpg killed by signal " + std::to_string(WTERMSIG(in.wait_status)));
  }
  return Status::DataLoss(with_detail("decryption failed: corrupt or truncated message"));
}

Result<std::unique_ptr<Decryptor>> NewGpgDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink) {
  std::string home = options.gnupg_home;
  if (home.empty()) {
    GRIN_ASSIGN_OR_RETURN(home, ProcessGnupgHome::Get());
  }
  std::vector<std::string> argv = {
      options.gpg_program, "--homedir", home, "--batch", "--no-tty", "--quiet",
      "--no-greeting", "--no-permission-warning", "--no-options", "--pinentry-mode", "loopback",
      "--passphrase-fd", "3", "--status-fd", "4", "--no-symkey-cache",
      "--no-auto-check-trustdb", "--trust-model", "always", "--no-auto-key-retrieve"};
  if (options.max_plaintext_bytes) {
    argv.push_back("--max-output");
    argv.push_back(std::to_string(options.max_plaintext_bytes));
  }
  argv.insert(argv.end(), {"--output", "-", "--decrypt", "-"});
  GRIN_ASSIGN_OR_RETURN(
      Subprocess child,
      Subprocess::Spawn(argv, MinimalEnv({"GPG_TTY=", "GNUPGHOME=" + home}),
                        {{kIn, PipeDir::kChildReads, kDataPipeBytes},
                         {kOut, PipeDir::kChildWrites, kDataPipeBytes},
                         {kErr, PipeDir::kChildWrites},
                         {kPass, PipeDir::kChildReads},
                         {kStatus, PipeDir::kChildWrites}}));
  {
    // The passphrase is far below the pipe's capacity, so this never blocks on gpg.
    ScopedSigpipeBlock no_sigpipe;
    std::string line = passphrase.reveal() + "\n";
    Status s = WriteAll(child.parent_fds()[kPass].get(), line.data(), line.size());
    std::fill(line.begin(), line.end(), '\0');
    child.parent_fds()[kPass].Reset();
    if (!s.ok()) return Status::Internal("gpg did not accept the passphrase pipe: " + s.message());
  }
  return std::unique_ptr<Decryptor>(
      new GpgDecryptor(std::move(child), sink, options.max_plaintext_bytes));
}

}  // namespace grin::archive::internal
