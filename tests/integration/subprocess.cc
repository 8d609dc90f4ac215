#include "tests/integration/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace apq::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv) {
  char pattern[] = "/tmp/apq-test-XXXXXX";
  dir_ = mkdtemp(pattern);
  std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
  pid_ = fork();
  if (pid_ == 0) {
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string Subprocess::Stdout() const { return ReadAll(dir_ + "/stdout"); }
std::string Subprocess::Stderr() const { return ReadAll(dir_ + "/stderr"); }

bool Subprocess::WaitForOutput(const std::string& text, double timeout_seconds, bool on_stderr) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if ((on_stderr ? Stderr() : Stdout()).find(text) != std::string::npos) return true;
    int status = 0;
    if (!exited_ && waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return (on_stderr ? Stderr() : Stdout()).find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Subprocess::Wait(double timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (!exited_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      exited_ = true;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_status_;
}

void Subprocess::Signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

bool WaitForReadyFile(const std::string& path, double timeout_seconds, std::string* text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  do {
    std::ifstream file(path);
    std::stringstream contents;
    contents << file.rdbuf();
    *text = contents.str();
    if (text->find("ready=1\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string BuiltBinary(const std::string& relative_path) { return std::string(APQ_BUILD_DIR) + "/" + relative_path; }

std::vector<uint64_t> ThreadCapabilities(pid_t pid) {
  std::vector<uint64_t> capabilities;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("CapEff:", 0) == 0) capabilities.push_back(std::stoull(line.substr(7), nullptr, 16));
    }
  }
  return capabilities;
}

}  // namespace apq::testing
