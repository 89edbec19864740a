#include "tests/net/loopback_server.h"

#include <openssl/ssl.h>

namespace grin::net::testing {
namespace {

// ex_data slots on SSL objects: the owning server, and per-connection progress flags.
int ServerIndex() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
int StateIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
// Flag values stored in the SSL's ex_data slot (as a pointer-sized integer).
constexpr uintptr_t kSeen = 1, kDone = 2;

}  // namespace

LoopbackServer::LoopbackServer(const TestPki& pki, int worker_threads, int max_tls_version) {
  server_ = std::make_unique<httplib::SSLServer>([this, &pki, max_tls_version](SSL_CTX& ctx) {
    if (max_tls_version != 0 && SSL_CTX_set_max_proto_version(&ctx, max_tls_version) != 1) {
      return false;
    }
    if (SSL_CTX_use_certificate(&ctx, pki.server_cert.get()) != 1) return false;
    if (SSL_CTX_use_PrivateKey(&ctx, pki.server_key.get()) != 1) return false;
    SSL_CTX_set_ex_data(&ctx, ServerIndex(), this);
    SSL_CTX_set_info_callback(&ctx, &LoopbackServer::InfoCallback);
    SSL_CTX_set_session_cache_mode(&ctx, SSL_SESS_CACHE_SERVER);
    return true;
  });
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(1'000'000);
  server_->set_keep_alive_timeout(30);
  server_->set_read_timeout(30);
  server_->set_write_timeout(30);
  server_->new_task_queue = [n = worker_threads] {
    return new httplib::ThreadPool(static_cast<size_t>(n));
  };
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    requests_.fetch_add(1);
    std::lock_guard<std::mutex> l(mu_);
    ports_.insert(req.remote_port);
    return httplib::Server::HandlerResponse::Unhandled;
  });
}

LoopbackServer::~LoopbackServer() { Stop(); }

bool LoopbackServer::Start() {
  if (!server_->is_valid()) return false;
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return false;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return true;
}

void LoopbackServer::Stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

uint64_t LoopbackServer::distinct_client_ports() const {
  std::lock_guard<std::mutex> l(mu_);
  return ports_.size();
}

void LoopbackServer::InfoCallback(const SSL* ssl, int where, int /*ret*/) {
  auto* self =
      static_cast<LoopbackServer*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ServerIndex()));
  if (self == nullptr) return;
  SSL* s = const_cast<SSL*>(ssl);
  auto state = reinterpret_cast<uintptr_t>(SSL_get_ex_data(s, StateIndex()));
  if (!(state & kSeen)) {  // first event on this connection: a TCP connection was accepted
    self->tls_connections_.fetch_add(1);
    state |= kSeen;
  }
  if ((where & SSL_CB_HANDSHAKE_DONE) && !(state & kDone)) {
    self->handshakes_.fetch_add(1);
    if (SSL_session_reused(s)) self->resumed_.fetch_add(1);
    state |= kDone;
  }
  SSL_set_ex_data(s, StateIndex(), reinterpret_cast<void*>(state));
}

}  // namespace grin::net::testing
