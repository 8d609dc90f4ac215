#include "common/transport.h"

#include "common/status_macros.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace apq {
namespace {

// Reads a PEM file named by a flag, or says which flag named what.
absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", pem.status().message()));
  if (!absl::StrContains(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const ServerTls& tls) {
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (tls.cert.empty()) {
    if (!tls.client_ca.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> cert = ReadPem("--tls-cert", tls.cert), key = ReadPem("--tls-key", tls.key);
  if (!cert.ok()) return cert.status();
  if (!key.ok()) return key.status();
  pair.cert_chain = std::move(*cert);
  pair.private_key = std::move(*key);
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--tls-client-ca", tls.client_ca);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = std::move(*ca);
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<ClientTlsPems> LoadClientTls(const ClientTls& tls) {
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  ClientTlsPems pems;
  if (tls.ca.empty()) {
    if (!tls.cert.empty() || !tls.server_name.empty()) {
      return absl::InvalidArgumentError("TLS needs --tls-ca, to verify the aggregator");
    }
    return pems;
  }
  pems.use_tls = true;
  APQ_ASSIGN_OR_RETURN(pems.ca, ReadPem("--tls-ca", tls.ca));
  if (!tls.cert.empty()) {
    APQ_ASSIGN_OR_RETURN(pems.cert, ReadPem("--tls-cert", tls.cert));
    APQ_ASSIGN_OR_RETURN(pems.key, ReadPem("--tls-key", tls.key));
  }
  pems.server_name = tls.server_name;
  return pems;
}

std::shared_ptr<grpc::Channel> ChannelWith(const std::string& target, const ClientTlsPems& tls,
                                           grpc::ChannelArguments arguments) {
  if (!tls.use_tls) return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca;
  options.pem_cert_chain = tls.cert;
  options.pem_private_key = tls.key;
  if (!tls.server_name.empty()) arguments.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), arguments);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& target, const ClientTls& tls,
                                                         grpc::ChannelArguments arguments) {
  APQ_ASSIGN_OR_RETURN(const ClientTlsPems pems, LoadClientTls(tls));
  return ChannelWith(target, pems, std::move(arguments));
}

bool IsLoopback(const std::string& host_port) {
  absl::string_view host = absl::string_view(host_port).substr(0, host_port.rfind(':'));
  if (host == "localhost" || host == "[::1]") return true;
  return absl::StartsWith(host, "127.") && host.find_first_not_of("0123456789.") == absl::string_view::npos;
}

}  // namespace apq
