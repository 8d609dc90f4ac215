#include "common/http_server.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace apq {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host_port, std::vector<Route> routes) {
  const size_t colon = host_port.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("expected HOST:PORT, not '", host_port, "'"));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->server_ = std::make_unique<httplib::Server>();
  for (Route& route : routes) {
    server->server_->Get(route.path, [route](const httplib::Request& request, httplib::Response& response) {
      Params params;
      for (const auto& [key, value] : request.params) params.emplace(key, value);  // the first of repeated keys
      absl::StatusOr<std::string> body = route.body(params);
      if (body.ok()) {
        response.set_content(*body, route.content_type);
      } else {
        response.status = body.status().code() == absl::StatusCode::kInvalidArgument ? 400 : 500;
        response.set_content(std::string(body.status().message()) + "\n", "text/plain");
      }
    });
  }
  const bool bound = port == 0 ? (server->port_ = server->server_->bind_to_any_port(host)) > 0
                               : (server->port_ = port, server->server_->bind_to_port(host, port));
  if (!bound) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", host_port));
  }
  server->thread_ = std::thread([s = server->server_.get()] { s->listen_after_bind(); });
  return server;
}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace apq
