#include "cli/commands/grin_stack.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "cli/cli.h"
#include "cli/state_factory.h"

namespace grin::cli {

GrinStack::~GrinStack() {
  client.reset();
  tokens.reset();
  if (transport) transport->Shutdown();
  catalog.reset();
}

Status JoinCaBundles(const std::string& out_path, const std::string& first,
                     const std::string& second) {
  std::string joined;
  for (const std::string* in : {&first, &second}) {
    std::ifstream f(*in, std::ios::binary);
    std::ostringstream text;
    if (f) text << f.rdbuf();
    if (!f || f.bad()) {
      return Status::PermissionDenied("CA bundle " + *in + ": cannot be read (check ca_file / "
                                      "storage.ca_file in run_config.json)");
    }
    joined += text.str();
    if (!joined.empty() && joined.back() != '\n') joined += '\n';
  }
  const std::string tmp = out_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << joined;
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status::Internal(out_path + ": cannot write the joined CA bundle (disk full or "
                              "directory not writable?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out_path, ec);
  if (ec) return Status::Internal(out_path + ": cannot replace the CA bundle (" + ec.message() + ")");
  return Status::Ok();
}

int ReportGrinError(std::ostream& err, const char* command, const Status& status) {
  err << "grin-jobs " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kBusy ? kExitLocked : kExitFailure;
}

Result<std::unique_ptr<GrinStack>> OpenGrinStack(const std::string& run_dir,
                                                 const GrinStackOptions& options,
                                                 bool* grin_side) {
  *grin_side = false;
  auto stack = std::make_unique<GrinStack>();
  GRIN_ASSIGN_OR_RETURN(stack->config, LoadRunConfig(run_dir));
  if (stack->config.library_directory.empty()) {
    return Status::InvalidArgument("run_config.json has no library_directory; set it with "
                                   "`grin-jobs config set library_directory DIR`");
  }
  GRIN_ASSIGN_OR_RETURN(storage::RunLock lock, storage::RunLock::Acquire(DbPath(run_dir)));
  stack->lock = std::make_unique<storage::RunLock>(std::move(lock));
  if (options.open_catalog) {
    GRIN_ASSIGN_OR_RETURN(stack->catalog, OpenRunCatalog(run_dir, stack->config));
  }
  *grin_side = true;
  net::TransportOptions t;
  t.ca_file = stack->config.ca_file;
  t.max_connections_per_host = options.max_connections;
  t.default_host_limits.requests_per_second = options.requests_per_second;
  t.logger = options.logger;
  GRIN_ASSIGN_OR_RETURN(stack->transport, net::CurlTransport::Create(t));

  CredentialsSearch search(options.credentials_dir, &stack->config);
  GRIN_ASSIGN_OR_RETURN(FoundSecret token, search.Find(SecretKind::kToken));
  if (options.logger != nullptr) {
    options.logger->Log(LogLevel::kInfo, "credentials.token", {{"path", Describe(token)}});
  }
  const std::string creds_path = token.path;
  GRIN_ASSIGN_OR_RETURN(grin_client::OAuthCredentials creds,
                        grin_client::LoadCredentials(creds_path));
  if (!stack->config.grin_token_url.empty()) creds.token_uri = stack->config.grin_token_url;
  grin_client::TokenSource::Options to;
  to.credentials_path = creds_path;
  to.logger = options.logger;
  stack->tokens = std::make_unique<grin_client::TokenSource>(stack->transport.get(),
                                                             std::move(creds), to);
  grin_client::ClientOptions co;
  co.base_url = stack->config.grin_base_url;
  co.directory = stack->config.library_directory;
  co.logger = options.logger;
  stack->client = std::make_unique<grin_client::GrinClient>(stack->transport.get(),
                                                            stack->tokens.get(), co);
  return stack;
}

TransferStack::~TransferStack() {
  objects.store.reset();
  client.reset();
  tokens.reset();
  if (transport) transport->Shutdown();
}

Result<std::unique_ptr<TransferStack>> OpenTransferStack(const std::string& run_dir,
                                                         const RunConfig& config,
                                                         const TransferStackOptions& options) {
  auto stack = std::make_unique<TransferStack>();
  // One transport for everything; trust the GRIN and the storage CA if the run names them.
  // storage.ca_file, else AWS_CA_BUNDLE, else ~/.aws/config's ca_bundle (object_store_factory.h).
  std::string storage_ca = StorageCaFile(config.storage);
  net::TransportOptions topt;
  topt.logger = options.logger;
  topt.max_connections_per_host = options.max_connections_per_host;
  // Two hosts (GRIN and storage) at full concurrency, so the total cap never closes a connection
  // one of them will need again (a new TLS handshake each time).
  topt.max_total_connections = 2 * topt.max_connections_per_host + 8;
  if (options.fail_fast) {
    topt.retry.max_attempts = 2;
    topt.retry.max_retry_after_ms = 2'000;
    topt.retry.max_delay_ms = 1'000;
    topt.connect_timeout_ms = 10'000;
    topt.low_speed_time_seconds = 15;
  }
  topt.ca_file = config.ca_file;
  if (!storage_ca.empty() && storage_ca != config.ca_file) {
    if (config.ca_file.empty()) {
      topt.ca_file = storage_ca;
    } else {
      std::string bundle = (std::filesystem::path(run_dir) / "ca-bundle.pem").string();
      GRIN_RETURN_IF_ERROR(JoinCaBundles(bundle, config.ca_file, storage_ca));
      topt.ca_file = bundle;
    }
  }
  GRIN_ASSIGN_OR_RETURN(stack->transport, net::CurlTransport::Create(topt));
  // GRIN is polite: request rate and bandwidth caps on its host only.
  {
    // The transport's own key for the URL, so the limits land on the host GRIN's requests use.
    auto hostport = net::HostKeyOf(config.grin_base_url);
    if (!hostport.ok()) {
      return Status::InvalidArgument("run_config.json grin_base_url: " +
                                     hostport.status().message());
    }
    net::HostLimits gl;
    gl.requests_per_second = options.grin_requests_per_second;
    gl.bytes_per_second_down = options.grin_bytes_per_second;
    gl.max_connections = options.grin_max_connections;
    stack->transport->SetHostLimits(*hostport, gl);
  }
  CredentialsSearch search(options.credentials_dir, &config);
  GRIN_ASSIGN_OR_RETURN(stack->token, search.Find(SecretKind::kToken));
  if (options.logger != nullptr) {
    options.logger->Log(LogLevel::kInfo, "credentials.token", {{"path", Describe(stack->token)}});
  }
  const std::string creds_path = stack->token.path;
  GRIN_ASSIGN_OR_RETURN(grin_client::OAuthCredentials creds,
                        grin_client::LoadCredentials(creds_path));
  if (!config.grin_token_url.empty()) creds.token_uri = config.grin_token_url;
  grin_client::TokenSource::Options tso;
  tso.credentials_path = creds_path;
  tso.logger = options.logger;
  stack->tokens = std::make_unique<grin_client::TokenSource>(stack->transport.get(),
                                                             std::move(creds), tso);
  grin_client::ClientOptions co;
  co.base_url = config.grin_base_url;
  co.directory = config.library_directory;
  co.logger = options.logger;
  if (options.grin_list_attempts > 0) co.patience.max_attempts = options.grin_list_attempts;
  stack->client = std::make_unique<grin_client::GrinClient>(stack->transport.get(),
                                                            stack->tokens.get(), co);
  nlohmann::json storage_cfg = WithStorageCredentials(config.storage, search, &stack->r2_keys);
  if (stack->r2_keys && options.logger != nullptr) {
    options.logger->Log(LogLevel::kInfo, "credentials.r2", {{"path", Describe(*stack->r2_keys)}});
  }
  GRIN_ASSIGN_OR_RETURN(stack->objects, OpenObjectStore(storage_cfg, stack->transport.get()));
  return stack;
}

}  // namespace grin::cli
