#include "agent/bpf_page_tracker.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <bpf/btf.h>

#include <algorithm>
#include <functional>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/privileges.h"
#include "common/log.h"
#include "common/errors.h"
#include "common/files.h"
#include "page_tracker.skel.h"
#include "common/status_macros.h"

namespace apq {
namespace {

constexpr uint32_t kMaxProcessNames = 1 << 16;

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// libbpf prints through this; keep warnings and errors, drop debug chatter.
int PrintLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, format, args);
}

// Sums a per-CPU u64 array entry.
absl::StatusOr<uint64_t> SumPerCpu(int map_fd, uint32_t key, int nr_cpus) {
  std::vector<uint64_t> values(static_cast<size_t>(nr_cpus));
  if (bpf_map_lookup_elem(map_fd, &key, values.data()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("read counter ", key));
  }
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  return sum;
}

template <typename Key, typename Fn>
absl::Status ForEachKey(int map_fd, const char* map_name, Fn&& fn) {
  Key key{}, next{};
  const Key* previous = nullptr;
  while (true) {
    if (bpf_map_get_next_key(map_fd, previous, &next) != 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoStatus(errno, absl::StrCat("iterate map ", map_name));
    }
    APQ_RETURN_IF_ERROR(fn(next));
    key = next;
    previous = &key;
  }
}

// A path without a tracepoint and the fentry/fexit program that sees it.
struct UntracedPath {
  const char* description;
  bpf_program* program;
  std::vector<const char*> functions;  // newest kernels' name first
  // Accepts the function's BTF prototype (parameter count), and sets the
  // program's load-time layout for it.
  std::function<bool(uint32_t params)> accept;
};

// Finds the first of the functions in the kernel's BTF whose prototype is
// accepted; returns its name or an empty string.
std::string FindTarget(const btf* vmlinux, const UntracedPath& path) {
  for (const char* name : path.functions) {
    int id = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC);
    if (id <= 0) continue;
    const btf_type* func = btf__type_by_id(vmlinux, id);
    const btf_type* proto = func ? btf__type_by_id(vmlinux, func->type) : nullptr;
    if (proto && btf_is_func_proto(proto) && path.accept(btf_vlen(proto))) return name;
  }
  return "";
}

// Measures vmemmap_base: this thread allocates a page while the raw_tp
// (page pointer) and tracepoint (pfn) programs record its first allocation.
absl::StatusOr<uint64_t> CalibrateVmemmap(page_tracker_bpf* skel, uint64_t struct_page_size) {
  volatile uint32_t& tid = skel->bss->calibration_tid;
  skel->bss->calibration_page = 0;
  skel->data->calibration_pfn = ~0ull;
  tid = static_cast<uint32_t>(gettid());
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    tid = 0;
    return ErrnoStatus(errno, "mmap a calibration page");
  }
  *static_cast<volatile char*>(page) = 1;
  munmap(page, 4096);
  tid = 0;
  uint64_t page_pointer = skel->bss->calibration_page, pfn = skel->data->calibration_pfn;
  if (page_pointer == 0 || pfn == ~0ull) {
    return absl::InternalError("vmemmap calibration saw no allocation from its own thread");
  }
  uint64_t base = page_pointer - pfn * struct_page_size;
  // The virtual memory map starts 2 MiB aligned in the kernel half.
  if (pfn * struct_page_size > page_pointer || base < 0xffff800000000000ull || base % (2 << 20) != 0) {
    return absl::InternalError(absl::StrFormat("vmemmap calibration gave an implausible base 0x%x", base));
  }
  return base;
}

}  // namespace

struct BpfPageTracker::State {
  page_tracker_bpf* skel = nullptr;
  void* owner_counters = MAP_FAILED;
  size_t owner_counters_bytes = 0;
  void* page_owner = MAP_FAILED;  // one u32 owner id per pfn
  size_t page_owner_bytes = 0;
  uint64_t page_table_size = 0;
  // Owned pages by class, read again only where the table changed.
  PageClassTally class_tally{0};
  uint32_t max_owners = 0;
  int nr_cpus = 0;
  // The kernel does not count skipped runs: raw tracepoint witnesses do.
  bool witnesses_skipped_runs = false;
  uint64_t stacks_seen = 0;
  uint64_t owners_seen = 0;
  // Every owner id in use, linked in owner_ids or waiting to be reused.
  struct OwnerLife {
    apq_owner_key key{};
    apq_owner_counters last{};  // at the previous snapshot
    int idle_snapshots = 0;     // snapshots in a row holding no pages, unchanged
    bool unlinked = false;      // removed from owner_ids; reused once a snapshot finds it still idle
  };
  absl::flat_hash_map<uint32_t, OwnerLife> owners;
  absl::flat_hash_map<uint32_t, uint32_t> reuses;  // by owner id: the high half of its serial
  absl::flat_hash_set<uint32_t> stack_ids_seen;
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> new_stacks;  // since the last snapshot
  absl::flat_hash_map<uint32_t, std::string> process_names;

  std::vector<bpf_link*> links;

  ~State() {
    for (bpf_link* link : links) bpf_link__destroy(link);
    if (owner_counters != MAP_FAILED) munmap(owner_counters, owner_counters_bytes);
    if (page_owner != MAP_FAILED) munmap(page_owner, page_owner_bytes);
    page_tracker_bpf__destroy(skel);
  }
};

absl::Status CheckKernelPrerequisites(const std::string& btf_path) {
  if (access(btf_path.c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this kernel has no BTF (", btf_path, " is missing): apq needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"));
  }
  bool privileged =
      HasEffectiveCapability(CAP_SYS_ADMIN) || (HasEffectiveCapability(CAP_BPF) && HasEffectiveCapability(CAP_PERFMON));
  if (!privileged) {
    return absl::PermissionDeniedError(
        "apq-agent needs root (CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON) to load its BPF programs");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> EnsureTracefs(const std::string& debugfs_tracing, const std::string& tracefs) {
  // libbpf resolves tracepoints under debugfs_tracing if that exists, else under tracefs.
  const std::string& root = access(debugfs_tracing.c_str(), F_OK) == 0 ? debugfs_tracing : tracefs;
  if (access((root + "/events/kmem").c_str(), F_OK) == 0) return false;
  if (mount("tracefs", root.c_str(), "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return ErrnoStatus(errno, absl::StrCat("mount tracefs on ", root, " (the kmem tracepoints need it)"));
  }
  if (access((root + "/events/kmem").c_str(), F_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("tracefs on ", root, " has no kmem events"));
  }
  return true;
}

bool CountsTracepointRecursionMisses(absl::string_view release) {
  std::vector<absl::string_view> parts = absl::StrSplit(release, absl::MaxSplits('.', 2));
  int major = 0, minor = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major)) return false;
  absl::string_view minor_digits = parts[1].substr(0, parts[1].find_first_not_of("0123456789"));
  if (!absl::SimpleAtoi(minor_digits, &minor)) return false;
  return major > 6 || (major == 6 && minor >= 7);
}

absl::StatusOr<uint64_t> PageTableSizeFromZoneinfo(absl::string_view zoneinfo) {
  uint64_t end = 0, spanned = 0;
  bool have_spanned = false;
  for (absl::string_view line : absl::StrSplit(zoneinfo, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "Node ")) {
      have_spanned = false;
    } else if (absl::ConsumePrefix(&line, "spanned")) {
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &spanned)) {
        return absl::InvalidArgumentError(absl::StrCat("zoneinfo: bad 'spanned' value '", line, "'"));
      }
      have_spanned = true;
    } else if (absl::ConsumePrefix(&line, "start_pfn:")) {
      uint64_t start = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &start) || !have_spanned) {
        return absl::InvalidArgumentError(absl::StrCat("zoneinfo: bad 'start_pfn' line '", line, "'"));
      }
      end = std::max(end, start + spanned);
    }
  }
  if (end == 0) return absl::InvalidArgumentError("zoneinfo: no zone with start_pfn and spanned");
  return end;
}

absl::StatusOr<std::unique_ptr<BpfPageTracker>> BpfPageTracker::Start(const BpfTrackerOptions& options) {
  APQ_RETURN_IF_ERROR(CheckKernelPrerequisites());
  libbpf_set_print(PrintLibbpf);
  absl::StatusOr<bool> mounted = EnsureTracefs();
  if (!mounted.ok()) return mounted.status();
  if (*mounted) APQ_LOG() << "tracefs was not mounted; mounted it for the kmem tracepoints";

  absl::StatusOr<std::string> zoneinfo = ReadFileToString("/proc/zoneinfo");
  if (!zoneinfo.ok()) return zoneinfo.status();
  absl::StatusOr<uint64_t> table_size = PageTableSizeFromZoneinfo(*zoneinfo);
  if (!table_size.ok()) return table_size.status();
  if (*table_size > 0x1fffffffeull) {
    return absl::OutOfRangeError(
        absl::StrCat("highest pfn ", *table_size, " is beyond what a BPF array of 2^32 page pairs covers"));
  }
  if (options.max_owners <= APQ_FIRST_OWNER_ID || options.max_stacks == 0) {
    return absl::InvalidArgumentError("owner and stack tables need room for at least one entry");
  }

  auto state = std::make_unique<State>();
  state->nr_cpus = libbpf_num_possible_cpus();
  if (state->nr_cpus <= 0) return ErrnoStatus(state->nr_cpus, "count possible CPUs");
  state->max_owners = options.max_owners;
  utsname uts{};
  state->witnesses_skipped_runs = !(uname(&uts) == 0 && CountsTracepointRecursionMisses(uts.release));
  state->skel = page_tracker_bpf__open();
  if (!state->skel) return ErrnoStatus(errno, "open BPF object page_tracker");
  page_tracker_bpf* skel = state->skel;

  skel->rodata->nr_cpus = static_cast<uint32_t>(state->nr_cpus);
  skel->rodata->max_owners = options.max_owners;
  skel->rodata->page_table_size = *table_size;
  skel->rodata->walk_every_stack = options.sampling.exact();
  skel->rodata->witness_skipped_runs = state->witnesses_skipped_runs;
  for (bpf_program* witness : {skel->progs.apq_witness_alloc, skel->progs.apq_witness_free}) {
    bpf_program__set_autoload(witness, state->witnesses_skipped_runs);
  }
  static_assert(sizeof(skel->rodata->sample_threshold) == sizeof(options.sampling.thresholds()));
  std::copy(options.sampling.thresholds().begin(), options.sampling.thresholds().end(), skel->rodata->sample_threshold);
  struct {
    bpf_map* map;
    uint32_t entries;
  } sizes[] = {
      {skel->maps.page_owner, static_cast<uint32_t>((*table_size + 1) / 2)},  // two pages an entry
      {skel->maps.owner_counters, options.max_owners},
      {skel->maps.owner_ids, options.max_owners},
      {skel->maps.free_owner_ids, options.max_owners},
      {skel->maps.stack_ids, options.max_stacks},
      {skel->maps.process_names, kMaxProcessNames},
  };
  for (const auto& [map, entries] : sizes) {
    if (int err = bpf_map__set_max_entries(map, entries); err != 0) {
      return ErrnoStatus(err, absl::StrCat("size BPF map ", bpf_map__name(map)));
    }
  }

  KernelCoverage coverage;
  coverage.program_type = "tracepoint (kmem:mm_page_alloc, kmem:mm_page_free)";
  coverage.fentry_allowed = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, nullptr) == 1;
  std::vector<UntracedPath> untraced = {
      {"bulk allocator (alloc_pages_bulk*: vmalloc, page_pool, sunrpc)",
       skel->progs.apq_bulk_exit,
       {"alloc_pages_bulk_noprof", "__alloc_pages_bulk"},
       [](uint32_t params) { return params == 5; }},
      {"bulk allocator (alloc_pages_bulk*: vmalloc, page_pool, sunrpc)",
       skel->progs.apq_bulk_exit_with_list,
       {"alloc_pages_bulk_noprof", "__alloc_pages_bulk"},
       [](uint32_t params) { return params == 6; }},
      {"contiguous ranges (alloc_contig_range: CMA, gigantic hugetlb pages)",
       skel->progs.apq_contig_exit,
       {"alloc_contig_range_noprof", "alloc_contig_range"},
       [](uint32_t params) { return params == 4; }},
      {"page migration (compaction, NUMA balancing): owner carried to the new page",
       skel->progs.apq_migrate_entry,
       {"folio_migrate_flags"},
       [](uint32_t params) { return params == 2; }},
      {"page migration (compaction, NUMA balancing): owner carried to the new page",
       skel->progs.apq_migrate_page_entry,
       {"migrate_page_states"},
       [](uint32_t params) { return params == 2; }},
  };
  std::vector<bpf_program*> untraced_programs;
  uint64_t struct_page_size = 0;
  btf* vmlinux = coverage.fentry_allowed ? btf__load_vmlinux_btf() : nullptr;
  if (vmlinux) {
    int page_id = btf__find_by_name_kind(vmlinux, "page", BTF_KIND_STRUCT);
    if (page_id > 0) struct_page_size = static_cast<uint64_t>(btf__resolve_size(vmlinux, page_id));
  }
  std::vector<std::string> unhooked;
  for (const UntracedPath& path : untraced) {
    std::string target = vmlinux && struct_page_size ? FindTarget(vmlinux, path) : "";
    if (target.empty() || bpf_program__set_attach_target(path.program, 0, target.c_str()) != 0) {
      bpf_program__set_autoload(path.program, false);
      unhooked.push_back(absl::StrCat(path.description, ": no tracepoint, and ",
                                      !coverage.fentry_allowed ? "this kernel refuses fentry/fexit programs"
                                                               : "no known function to hook in this kernel's BTF"));
      continue;
    }
    untraced_programs.push_back(path.program);
    coverage.hooked_paths.push_back(absl::StrCat(
        path.description, ": ",
        bpf_program__expected_attach_type(path.program) == BPF_TRACE_FENTRY ? "fentry/" : "fexit/", target));
  }
  btf__free(vmlinux);
  // A path with several program variants (one per kernel layout) is blind
  // only if none of them is hooked.
  for (const std::string& line : unhooked) {
    absl::string_view description = absl::string_view(line).substr(0, line.find(": no tracepoint"));
    bool hooked = std::any_of(coverage.hooked_paths.begin(), coverage.hooked_paths.end(),
                              [&](const std::string& h) { return absl::StartsWith(h, description); });
    bool listed =
        std::find(coverage.blind_paths.begin(), coverage.blind_paths.end(), line) != coverage.blind_paths.end();
    if (!hooked && !listed) coverage.blind_paths.push_back(line);
  }
  if (untraced_programs.empty()) bpf_program__set_autoload(skel->progs.apq_calibrate, false);

  if (int err = page_tracker_bpf__load(skel); err != 0) {
    if (err == -EPERM || err == -EACCES) {
      return ErrnoStatus(err, "load BPF programs (is this user root, and is BPF allowed by lockdown/LSM?)");
    }
    return ErrnoStatus(err, "load BPF programs of page_tracker");
  }
  state->owner_counters_bytes =
      (static_cast<size_t>(options.max_owners) * sizeof(apq_owner_counters) + getpagesize() - 1) / getpagesize() *
      getpagesize();
  state->owner_counters =
      mmap(nullptr, state->owner_counters_bytes, PROT_READ, MAP_SHARED, bpf_map__fd(skel->maps.owner_counters), 0);
  if (state->owner_counters == MAP_FAILED) return ErrnoStatus(errno, "mmap BPF map owner_counters");
  state->page_table_size = *table_size;
  state->class_tally = PageClassTally(*table_size);
  state->page_owner_bytes =
      ((*table_size + 1) / 2 * sizeof(uint64_t) + getpagesize() - 1) / getpagesize() * getpagesize();
  state->page_owner =
      mmap(nullptr, state->page_owner_bytes, PROT_READ, MAP_SHARED, bpf_map__fd(skel->maps.page_owner), 0);
  if (state->page_owner == MAP_FAILED) return ErrnoStatus(errno, "mmap BPF map page_owner");

  auto attach = [&](bpf_program* program) -> absl::StatusOr<bpf_link*> {
    bpf_link* link = bpf_program__attach(program);
    if (!link) return ErrnoStatus(errno, absl::StrCat("attach BPF program ", bpf_program__name(program)));
    state->links.push_back(link);
    return link;
  };
  for (bpf_program* program : {skel->progs.apq_page_alloc, skel->progs.apq_page_free}) {
    if (absl::StatusOr<bpf_link*> link = attach(program); !link.ok()) {
      return absl::Status(link.status().code(), absl::StrCat(link.status().message(), " (kmem tracepoints)"));
    }
  }
  if (state->witnesses_skipped_runs) {
    for (bpf_program* witness : {skel->progs.apq_witness_alloc, skel->progs.apq_witness_free}) {
      if (absl::StatusOr<bpf_link*> link = attach(witness); !link.ok()) return link.status();
    }
    __atomic_store_n(&skel->bss->witness_armed, 1, __ATOMIC_RELEASE);
  }
  if (!untraced_programs.empty()) {
    absl::StatusOr<uint64_t> base = absl::InternalError("not run");
    if (absl::StatusOr<bpf_link*> link = attach(skel->progs.apq_calibrate); link.ok()) {
      base = CalibrateVmemmap(skel, struct_page_size);
      bpf_link__destroy(*link);
      state->links.pop_back();
    } else {
      base = link.status();
    }
    std::vector<std::string> hooked;
    for (size_t i = 0; i < untraced_programs.size(); ++i) {
      absl::Status status = base.status();
      if (status.ok()) {
        skel->bss->vmemmap_base = *base;
        status = attach(untraced_programs[i]).status();
      }
      if (status.ok()) {
        hooked.push_back(coverage.hooked_paths[i]);
      } else {
        coverage.blind_paths.push_back(absl::StrCat(coverage.hooked_paths[i], ": not hooked: ", status.message()));
      }
    }
    coverage.hooked_paths = std::move(hooked);
  }
  std::unique_ptr<BpfPageTracker> tracker(new BpfPageTracker(std::move(state)));
  tracker->coverage_ = std::move(coverage);
  return tracker;
}

BpfPageTracker::BpfPageTracker(std::unique_ptr<State> state) : state_(std::move(state)) {}
BpfPageTracker::~BpfPageTracker() = default;

// Owners are read before stacks: the BPF program inserts a stack before any
// owner that refers to it, so every owner read here has its stack in the map
// by the time the stacks are read, and each snapshot is self-consistent.
absl::Status BpfPageTracker::RefreshTables(uint64_t stacks_created, uint64_t owners_created) {
  page_tracker_bpf* skel = state_->skel;
  bool owner_needs_stack = false;
  if (owners_created != state_->owners_seen) {
    absl::Status status = ForEachKey<apq_owner_key>(
        bpf_map__fd(skel->maps.owner_ids), "owner_ids", [&](const apq_owner_key& key) -> absl::Status {
          uint32_t id = 0;
          if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.owner_ids), &key, &id) != 0) return absl::OkStatus();
          if (state_->owners.try_emplace(id, State::OwnerLife{key}).second && key.stack_id < APQ_STACK_LOST &&
              !state_->stack_ids_seen.contains(key.stack_id)) {
            owner_needs_stack = true;
          }
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    status = ForEachKey<uint32_t>(
        bpf_map__fd(skel->maps.process_names), "process_names", [&](uint32_t tgid) -> absl::Status {
          apq_process_name name{};
          if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.process_names), &tgid, &name) != 0) {
            return absl::OkStatus();
          }
          state_->process_names[tgid] = std::string(name.comm, strnlen(name.comm, sizeof(name.comm)));
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    state_->owners_seen = owners_created;
  }
  if (stacks_created != state_->stacks_seen || owner_needs_stack) {
    absl::Status status = ForEachKey<apq_stack_key>(
        bpf_map__fd(skel->maps.stack_ids), "stack_ids", [&](const apq_stack_key& key) -> absl::Status {
          uint32_t id = 0;
          if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stack_ids), &key, &id) != 0) return absl::OkStatus();
          if (!state_->stack_ids_seen.insert(id).second) return absl::OkStatus();
          std::vector<uint64_t> frames;
          for (uint64_t ip : key.ips) {
            if (ip == 0) break;
            frames.push_back(ip);
          }
          state_->new_stacks.emplace(id, std::move(frames));
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    state_->stacks_seen = stacks_created;
  }
  return absl::OkStatus();
}

absl::StatusOr<TrackerSnapshot> BpfPageTracker::Snapshot() {
  TrackerSnapshot snapshot;
  snapshot.monotonic_seconds = MonotonicSeconds();
  snapshot.unix_millis = UnixMillis();
  int counters_fd = bpf_map__fd(state_->skel->maps.counters);
  for (uint32_t i = 0; i < APQ_NR_COUNTERS; ++i) {
    absl::StatusOr<uint64_t> value = SumPerCpu(counters_fd, i, state_->nr_cpus);
    if (!value.ok()) return value.status();
    snapshot.counters[i] = *value;
  }
  if (absl::Status status =
          RefreshTables(snapshot.counters[APQ_CTR_STACKS_CREATED], snapshot.counters[APQ_CTR_OWNERS_CREATED]);
      !status.ok()) {
    return status;
  }

  const auto* counters = static_cast<const apq_owner_counters*>(state_->owner_counters);
  auto read_counters = [&](uint32_t id) {
    apq_owner_counters c{};
    c.pages_outstanding = __atomic_load_n(&counters[id].pages_outstanding, __ATOMIC_RELAXED);
    c.pages_allocated = __atomic_load_n(&counters[id].pages_allocated, __ATOMIC_RELAXED);
    c.allocations = __atomic_load_n(&counters[id].allocations, __ATOMIC_RELAXED);
    return c;
  };
  // Owners that hold no pages and stay idle are retired, so a host that
  // runs short-lived processes does not fill the table: first unlinked from
  // owner_ids (a new allocation of that key gets a new owner), then, if the
  // next snapshot finds them still idle (no allocation that looked the id up
  // before the unlink landed since), their counters are zeroed and the id is
  // handed back to BPF through free_owner_ids.
  snapshot.owners.reserve(state_->owners.size() + 1);
  bool unlinked_any = false;
  std::vector<uint32_t> recycled;
  int owner_ids_fd = bpf_map__fd(state_->skel->maps.owner_ids);
  for (auto& [id, life] : state_->owners) {
    if (id >= state_->max_owners) continue;
    const apq_owner_counters now = read_counters(id);
    const bool idle = now.pages_outstanding == 0 && now.pages_allocated == life.last.pages_allocated &&
                      now.allocations == life.last.allocations && life.last.pages_outstanding == 0;
    life.idle_snapshots = idle ? life.idle_snapshots + 1 : 0;
    life.last = now;
    if (life.unlinked && idle) {
      const apq_owner_counters zero{};
      if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.owner_counters), &id, &zero, BPF_ANY) == 0 &&
          bpf_map_update_elem(bpf_map__fd(state_->skel->maps.free_owner_ids), nullptr, &id, BPF_ANY) == 0) {
        recycled.push_back(id);
        continue;
      }
    } else if (!life.unlinked && life.idle_snapshots >= kIdleSnapshotsToRetire) {
      // Gone from owner_ids already (ENOENT) is as good.
      bpf_map_delete_elem(owner_ids_fd, &life.key);
      life.unlinked = true;
      unlinked_any = true;
    }
    snapshot.owners.push_back({OwnerSerial(id, state_->reuses[id]), life.key, now});
  }
  for (uint32_t id : recycled) {
    state_->owners.erase(id);
    ++state_->reuses[id];
  }
  // Per-CPU caches filled before this may name an unlinked owner.
  if (unlinked_any) __atomic_add_fetch(&state_->skel->bss->owner_generation, 1, __ATOMIC_RELEASE);
  apq_owner_counters overflow = read_counters(APQ_OWNER_OVERFLOW);
  if (overflow.pages_allocated != 0) {
    apq_owner_key key{};
    key.stack_id = APQ_STACK_LOST;
    snapshot.owners.push_back({APQ_OWNER_OVERFLOW, key, overflow});
  }
  snapshot.new_stacks = std::move(state_->new_stacks);
  state_->new_stacks.clear();
  snapshot.process_names = state_->process_names;

  absl::StatusOr<int64_t> misses = SkippedTracepointRuns();
  if (!misses.ok()) return misses.status();
  snapshot.recursion_misses = *misses;
  return snapshot;
}

absl::StatusOr<int64_t> BpfPageTracker::SkippedTracepointRuns() const {
  if (state_->witnesses_skipped_runs) {
    // Per CPU the witness runs after the tracepoint it watches: a run in
    // flight shows as handled, not witnessed, so the sum is never above the truth.
    int64_t skipped = 0;
    std::vector<apq_tracepoint_runs> runs(static_cast<size_t>(state_->nr_cpus));
    for (uint32_t tracepoint = 0; tracepoint < APQ_NR_TRACEPOINTS; ++tracepoint) {
      if (bpf_map_lookup_elem(bpf_map__fd(state_->skel->maps.tracepoint_runs), &tracepoint, runs.data()) != 0) {
        return ErrnoStatus(errno, "read BPF map tracepoint_runs");
      }
      for (const apq_tracepoint_runs& cpu : runs) skipped += static_cast<int64_t>(cpu.witnessed - cpu.handled);
    }
    return std::max<int64_t>(skipped, 0);
  }
  int64_t misses = 0;
  for (bpf_program* prog : {state_->skel->progs.apq_page_alloc, state_->skel->progs.apq_page_free}) {
    bpf_prog_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &length) != 0) {
      return ErrnoStatus(errno, absl::StrCat("read info of BPF program ", bpf_program__name(prog)));
    }
    misses += static_cast<int64_t>(info.recursion_misses);
  }
  return misses;
}

absl::Status BpfPageTracker::ClassifyPages(TrackerSnapshot* snapshot, bool full) {
  const double start = MonotonicSeconds();
  static constexpr char kKpageflags[] = "/proc/kpageflags";
  int fd = open(kKpageflags, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", kKpageflags));
  auto read_flags = [fd](uint64_t first, size_t count, uint64_t* flags) -> absl::StatusOr<size_t> {
    ssize_t n = pread(fd, flags, count * sizeof(uint64_t), static_cast<off_t>(first * sizeof(uint64_t)));
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", kKpageflags));
    return static_cast<size_t>(n) / sizeof(uint64_t);
  };
  // One u32 owner id per pfn.
  absl::Status status = state_->class_tally.Pass(static_cast<const uint32_t*>(state_->page_owner), full, read_flags);
  close(fd);
  if (!status.ok()) return status;
  TrackerSnapshot::PageClassification classes;
  classes.owners = state_->class_tally.owners();
  classes.free_pages_still_owned = state_->class_tally.free_pages_still_owned();
  classes.pfns_read = state_->class_tally.pfns_read_last_pass();
  classes.full = full;
  classes.seconds = MonotonicSeconds() - start;
  snapshot->page_classes = std::move(classes);
  return absl::OkStatus();
}

}  // namespace apq
