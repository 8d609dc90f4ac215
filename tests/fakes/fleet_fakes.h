// Fakes shared by the aggregator's tests, its fuzzers and the fleet load
// generator (never by production targets): a frame encoder and a tracker
// whose counters move at random.
#ifndef APQ_TESTS_FAKES_FLEET_FAKES_H_
#define APQ_TESTS_FAKES_FLEET_FAKES_H_

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include "agent/report_stream.h"
#include "aggregator/fleet_epoch.h"

namespace apq {

// Frames in one "vmlinux" at 0xffffffff81000000, of the given build ID.
class FakeFrames : public FrameEncoder {
 public:
  explicit FakeFrames(std::string build_id = "") : build_id_(std::move(build_id)) {}
  apq::v1::Frame Encode(uint64_t ip) override {
    if (!named_) {
      named_ = true;
      fresh_ = true;
    }
    apq::v1::Frame frame;
    frame.set_object_id(0);
    frame.set_offset(ip - 0xffffffff81000000ull);
    return frame;
  }
  std::vector<apq::v1::CodeObject> TakeNewObjects() override {
    if (!fresh_) return {};
    fresh_ = false;
    return AllObjects();
  }
  std::vector<apq::v1::CodeObject> AllObjects() const override {
    if (!named_) return {};
    apq::v1::CodeObject vmlinux;
    vmlinux.set_id(0);
    vmlinux.set_name("vmlinux");
    vmlinux.set_build_id(build_id_);
    return {vmlinux};
  }

 private:
  std::string build_id_;
  bool named_ = false, fresh_ = false;
};

// A tracker whose owners' counters move at random. Stack s is two frames,
// innermost first: kStackFrame + s called from kCallerFrame.
class FakeTracker {
 public:
  static constexpr size_t kMaxOwners = 40;  // two per stack
  static constexpr uint64_t kStackFrame = 0xffffffff81000100ull, kCallerFrame = 0xffffffff81000010ull;
  explicit FakeTracker(uint32_t seed) : rng_(seed) {}
  TrackerSnapshot Next() {
    TrackerSnapshot snapshot;
    if (owners_.size() < kMaxOwners && rng_() % 3 == 0) {
      uint32_t stack = static_cast<uint32_t>(owners_.size()) / 2;  // two owners per stack
      if (owners_.size() % 2 == 0) snapshot.new_stacks[stack] = {kStackFrame + stack, kCallerFrame};
      TrackerSnapshot::Owner owner;
      owner.id = APQ_FIRST_OWNER_ID + static_cast<uint32_t>(owners_.size());
      owner.key.stack_id = stack;
      owner.key.tgid = 100 + static_cast<uint32_t>(owners_.size());  // a key of its own
      owners_.push_back(owner);
    }
    for (TrackerSnapshot::Owner& owner : owners_) {
      if (rng_() % 2) continue;
      uint64_t allocated = rng_() % 50;
      int64_t freed = static_cast<int64_t>(rng_() % 60);
      freed = std::min<int64_t>(freed, owner.counters.pages_outstanding + static_cast<int64_t>(allocated));
      owner.counters.pages_allocated += allocated;
      owner.counters.allocations += allocated ? 1 : 0;
      owner.counters.pages_outstanding += static_cast<int64_t>(allocated) - freed;
    }
    snapshot.owners = owners_;
    return snapshot;
  }
  const std::vector<TrackerSnapshot::Owner>& owners() const { return owners_; }

  // Classifies a snapshot: each owner's pages split at random between
  // hidden and anonymous; the host's memory stamped with `unix_millis`.
  ClassifiedPages Classify(const TrackerSnapshot& snapshot, int64_t unix_millis) {
    ClassifiedPages classified;
    for (const TrackerSnapshot::Owner& owner : snapshot.owners) {
      if (owner.counters.pages_outstanding <= 0) continue;
      auto pages = static_cast<uint64_t>(owner.counters.pages_outstanding);
      ClassPageCounts& split = classified.owners[owner.id];
      split[apq::v1::PAGE_CLASS_HIDDEN] = rng_() % (pages + 1);
      split[apq::v1::PAGE_CLASS_ANON] = pages - split[apq::v1::PAGE_CLASS_HIDDEN];
    }
    classified.memory.set_classified_unix_millis(unix_millis);
    last_classified_ = classified;
    return classified;
  }
  // The last classification made, if any.
  const std::optional<ClassifiedPages>& last_classified() const { return last_classified_; }

 private:
  std::mt19937 rng_;
  std::vector<TrackerSnapshot::Owner> owners_;
  std::optional<ClassifiedPages> last_classified_;
};

// A snapshot defining stack 9 (one frame) and one owner of it.
inline TrackerSnapshot OneOwnerSnapshot(uint64_t owner_id, apq_owner_counters counters) {
  TrackerSnapshot snapshot;
  snapshot.new_stacks[9] = {0xffffffff81000100ull};
  TrackerSnapshot::Owner owner;
  owner.id = owner_id;
  owner.key.stack_id = 9;
  owner.counters = counters;
  snapshot.owners = {owner};
  return snapshot;
}

// The aggregator's state holds every owner of the tracker that holds pages
// as one series of the owner's key (stack, process, order) with its
// counts, and nothing else; with last_report_classified, also every
// series' split by class and the host memory of the tracker's last
// classification.
void ExpectStateMatches(const EpochState& state, const FakeTracker& tracker, bool last_report_classified = false);

}  // namespace apq

#endif  // APQ_TESTS_FAKES_FLEET_FAKES_H_
