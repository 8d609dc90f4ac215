#ifndef APQ_AGENT_START_HOLDERS_H_
#define APQ_AGENT_START_HOLDERS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "apq/v1/apq.pb.h"
#include "bpf/start_holders.h"

namespace apq {

// The processes holding pipe buffers and socket queues, from the records of
// one walk of every task's open files: each pipe or socket counted once
// (open in several tasks, it goes to the lowest tgid that can write to it,
// else the lowest tgid), summed per (kind, process), largest first.
std::vector<apq::v1::StartHolder> HoldersOf(const std::vector<apq_held_record>& records);

// Walks every task's open files once with a BPF task_file iterator. Fails
// where the kernel refuses tracing programs (lockdown) or predates 5.8.
absl::StatusOr<std::vector<apq::v1::StartHolder>> FindStartHolders();

}  // namespace apq

#endif  // APQ_AGENT_START_HOLDERS_H_
