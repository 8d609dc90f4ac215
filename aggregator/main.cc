// apq-aggregator: receives the agents' streams, stores them in SQLite, and
// answers fleet queries.
#include <signal.h>

#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "aggregator/services.h"
#include "common/flag_names.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "Address to listen on (HOST:PORT). The protocol is not encrypted: "
                                                 "listen beyond localhost only on a trusted network.");
ABSL_FLAG(std::string, db, "apq.db", "SQLite database file (created if missing).");
ABSL_FLAG(double, fresh_seconds, 60, "A host is part of 'now' if it reported within this many seconds.");

namespace {

constexpr int kMaxMessageBytes = 64 << 20;  // a kernel's symbol table is a few MiB

absl::Status Run() {
  double fresh = absl::GetFlag(FLAGS_fresh_seconds);
  if (!(fresh > 0 && fresh < 86400 * 365)) return absl::InvalidArgumentError("--fresh-seconds must be positive");
  absl::StatusOr<std::unique_ptr<apq::Store>> store = apq::Store::Open(absl::GetFlag(FLAGS_db));
  if (!store.ok()) return store.status();
  apq::Fleet fleet(std::move(*store), static_cast<int64_t>(fresh * 1000));
  apq::IngestService ingest(&fleet);
  apq::QueryService query(&fleet);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(&ingest);
  builder.RegisterService(&query);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", absl::GetFlag(FLAGS_listen)));
  }
  std::cerr << "apq-aggregator: listening on port " << port << ", database " << absl::GetFlag(FLAGS_db) << std::endl;

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  int signal = 0;
  sigwait(&stop, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before gRPC starts its threads, so sigwait gets them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  absl::SetProgramUsageMessage("apq-aggregator [--listen HOST:PORT] [--db PATH] [--fresh-seconds S]");
  std::vector<std::string> positional = apq::ParseFlags(argc, argv);
  if (positional.size() > 1) {
    std::cerr << "apq-aggregator: unexpected argument '" << positional[1] << "'\n";
    return 2;
  }
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "apq-aggregator: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
