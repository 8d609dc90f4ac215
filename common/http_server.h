#ifndef APQ_COMMON_HTTP_SERVER_H_
#define APQ_COMMON_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace apq {

// A small HTTP listener for /metrics (and the aggregator's pages): GET
// routes answered from callbacks on the listener's own threads.
class HttpServer {
 public:
  using Params = std::map<std::string, std::string>;  // the query string, decoded
  struct Route {
    std::string path;
    std::string content_type;
    // InvalidArgument answers 400, other errors 500, with the message.
    std::function<absl::StatusOr<std::string>(const Params&)> body;
  };
  // host_port: HOST:PORT (port 0: any free one).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host_port, std::vector<Route> routes);
  ~HttpServer();  // stops listening and joins
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace apq

#endif  // APQ_COMMON_HTTP_SERVER_H_
