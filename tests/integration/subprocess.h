#ifndef APQ_TESTS_INTEGRATION_SUBPROCESS_H_
#define APQ_TESTS_INTEGRATION_SUBPROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace apq::testing {

// A child process whose stdout and stderr go to files, for tests.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();  // kills the child if it still runs
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout or stderr contains text; false on timeout or exit.
  bool WaitForOutput(const std::string& text, double timeout_seconds, bool on_stderr = false);
  // Waits for exit; returns the exit status, or -1 on timeout (then kills).
  int Wait(double timeout_seconds);
  void Signal(int sig);

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;  // -1 after a timeout
  std::string dir_;
};

// True for the functions that take a process's page tables (pgd_alloc,
// __p4d_alloc, __pud_alloc, __pmd_alloc, pte_alloc_one). Its page tables
// are hidden where the kernel counts them in no field (5.10's PageTables
// has PTE and PMD pages only), and, on every kernel, between their
// destructor and their free when the process exits (the free waits for
// RCU; PageTables no longer counts them): rightly shown so, and not the
// bytes of the load the process holds.
inline bool IsPageTableAllocation(const std::string& function) {
  return function == "pgd_alloc" || function == "__p4d_alloc" || function == "__pud_alloc" ||
         function == "__pmd_alloc" || function == "pte_alloc_one";
}

// Waits until a daemon's --ready-file says ready=1 (common/ready_file.h);
// false on timeout. The file's text into *text.
bool WaitForReadyFile(const std::string& path, double timeout_seconds, std::string* text);

// Path of a built binary next to the test binaries' build tree.
std::string BuiltBinary(const std::string& relative_path);

// The effective capabilities of every thread of process pid (capabilities
// are per thread), from /proc/PID/task/*/status.
std::vector<uint64_t> ThreadCapabilities(pid_t pid);

// A number of apq's json (the proto3 mapping: 64-bit integers are strings).
inline double JsonNumber(const nlohmann::json& value) {
  return value.is_string() ? std::stod(value.get<std::string>()) : value.get<double>();
}

}  // namespace apq::testing

#endif  // APQ_TESTS_INTEGRATION_SUBPROCESS_H_
