#include "agent/start_holders.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bpf/bpf.h"
#include "bpf/libbpf.h"
#include "common/errors.h"
#include "common/sampling.h"
#include "start_holders.skel.h"

namespace apq {
namespace {

const char* KindName(uint32_t kind) { return kind == APQ_HELD_PIPE ? "pipe buffers" : "socket queues"; }

// Whether `a` should hold an object rather than `b`: a writer first, then the lowest tgid.
bool Before(const apq_held_record& a, const apq_held_record& b) {
  return std::make_tuple(!a.writer, a.tgid) < std::make_tuple(!b.writer, b.tgid);
}

}  // namespace

std::vector<apq::v1::StartHolder> HoldersOf(const std::vector<apq_held_record>& records) {
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, const apq_held_record*> holder_of;  // (kind, object)
  for (const apq_held_record& record : records) {
    const apq_held_record*& holder = holder_of[{record.kind, record.object}];
    if (!holder || Before(record, *holder)) holder = &record;
  }
  absl::flat_hash_map<std::pair<uint32_t, uint32_t>, apq::v1::StartHolder> by_process;  // (kind, tgid)
  for (const auto& [object, record] : holder_of) {
    apq::v1::StartHolder& holder = by_process[{record->kind, record->tgid}];
    holder.set_kind(KindName(record->kind));
    holder.set_tgid(record->tgid);
    holder.set_comm(std::string(record->comm, strnlen(record->comm, sizeof(record->comm))));
    holder.set_bytes(holder.bytes() + (record->kind == APQ_HELD_PIPE ? record->pages * kPageSize : record->bytes));
    holder.set_objects(holder.objects() + 1);
  }
  std::vector<apq::v1::StartHolder> holders;
  for (auto& [key, holder] : by_process) holders.push_back(std::move(holder));
  std::sort(holders.begin(), holders.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(-static_cast<double>(a.bytes()), a.tgid(), a.kind()) <
           std::make_tuple(-static_cast<double>(b.bytes()), b.tgid(), b.kind());
  });
  return holders;
}

absl::StatusOr<std::vector<apq::v1::StartHolder>> FindStartHolders() {
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, nullptr) != 1) {
    return absl::UnavailableError("this kernel refuses tracing programs, so BPF iterators (lockdown, or before 5.5)");
  }
  std::unique_ptr<start_holders_bpf, decltype(&start_holders_bpf__destroy)> skel(start_holders_bpf__open_and_load(),
                                                                                 &start_holders_bpf__destroy);
  if (!skel) return ErrnoStatus(errno, "load the task_file iterator (kernel 5.8+)");
  std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(
      bpf_program__attach_iter(skel->progs.apq_held_files, nullptr), &bpf_link__destroy);
  if (!link) return ErrnoStatus(errno, "attach the task_file iterator");
  int fd = bpf_iter_create(bpf_link__fd(link.get()));
  if (fd < 0) return ErrnoStatus(errno, "start the task_file iterator");
  std::vector<apq_held_record> records;
  std::string buffer;
  char chunk[1 << 16];
  ssize_t got;
  while ((got = read(fd, chunk, sizeof(chunk))) > 0 || (got < 0 && errno == EINTR)) {
    if (got > 0) buffer.append(chunk, static_cast<size_t>(got));
  }
  const int read_errno = errno;
  close(fd);
  if (got < 0) return ErrnoStatus(read_errno, "read the task_file iterator");
  records.resize(buffer.size() / sizeof(apq_held_record));
  std::copy_n(buffer.data(), records.size() * sizeof(apq_held_record), reinterpret_cast<char*>(records.data()));
  return HoldersOf(records);
}

}  // namespace apq
