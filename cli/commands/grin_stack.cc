#include "cli/commands/grin_stack.h"

#include <cstdlib>
#include <ostream>

#include "cli/cli.h"

namespace grin::cli {

std::string CredentialsDir(const RunConfig* config) {
  if (config && !config->credentials_dir.empty()) return config->credentials_dir;
  if (const char* env = std::getenv("GRIN_CREDENTIALS_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/grin-jobs";
}

GrinStack::~GrinStack() {
  client.reset();
  tokens.reset();
  if (transport) transport->Shutdown();
  catalog.reset();
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
                                   "`grin-jobs init --library-directory DIR`");
  }
  GRIN_ASSIGN_OR_RETURN(storage::RunLock lock, storage::RunLock::Acquire(DbPath(run_dir)));
  stack->lock = std::make_unique<storage::RunLock>(std::move(lock));
  if (options.open_catalog) {
    GRIN_ASSIGN_OR_RETURN(stack->catalog, storage::SqliteBookCatalog::Open(DbPath(run_dir), nullptr, false));
  }
  *grin_side = true;
  net::TransportOptions t;
  t.ca_file = stack->config.ca_file;
  t.max_connections_per_host = options.max_connections;
  t.default_host_limits.requests_per_second = options.requests_per_second;
  t.logger = options.logger;
  GRIN_ASSIGN_OR_RETURN(stack->transport, net::CurlTransport::Create(t));

  const std::string creds_path = CredentialsDir(&stack->config) + "/credentials.json";
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

}  // namespace grin::cli
