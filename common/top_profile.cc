#include "common/top_profile.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/page_classes.h"

namespace apq {
namespace {

std::vector<ProfileFrame> FramesOf(const apq::v1::TopEntry& entry) {
  std::vector<ProfileFrame> frames;
  int i = 0;
  // A stack's key is folded (root;...;leaf; no frame holds a ';').
  for (absl::string_view function : absl::StrSplit(entry.key(), ';')) {
    const std::string object = i < entry.frame_objects_size() ? entry.frame_objects(i) : "";
    frames.push_back({std::string(function), object.empty() ? "[none]" : object});
    ++i;
  }
  return frames;
}

// Samples of `bytes` in use, one per class where classes are given.
void AddInUse(const ProfileSample& base, double bytes, ClassFilter filter,
              const google::protobuf::RepeatedPtrField<apq::v1::ClassAmount>& classes,
              std::vector<ProfileSample>* samples) {
  if (classes.empty()) {
    if (bytes <= 0) return;
    ProfileSample sample = base;
    sample.inuse_bytes = bytes;
    samples->push_back(std::move(sample));
    return;
  }
  for (const apq::v1::ClassAmount& amount : classes) {
    if (!Selected(filter, amount.page_class()) || amount.bytes() <= 0) continue;
    ProfileSample sample = base;
    sample.inuse_bytes = amount.bytes();
    sample.labels.emplace_back("class", PageClassName(amount.page_class()));
    samples->push_back(std::move(sample));
  }
}

}  // namespace

std::string FoldedOfTop(const apq::v1::TopResponse& response) {
  std::string out;
  for (const apq::v1::TopEntry& entry : response.entries()) {
    const auto bytes = static_cast<uint64_t>(std::llround(entry.bytes_outstanding()));
    if (bytes != 0) absl::StrAppend(&out, entry.key(), " ", bytes, "\n");
  }
  return out;
}

MemoryProfile ProfileOfTop(const apq::v1::TopResponse& response, ClassFilter filter,
                           const std::vector<std::pair<std::string, std::string>>& labels,
                           std::vector<std::string> comments) {
  MemoryProfile profile;
  profile.comments = std::move(comments);
  for (const apq::v1::TopEntry& entry : response.entries()) {
    const ProfileSample of_entry{FramesOf(entry), 0, 0, labels, {}};
    if (entry.processes().empty()) {
      // By class where the answer splits the entry; its total otherwise (history).
      AddInUse(of_entry, entry.bytes_outstanding(), filter, entry.classes(), &profile.samples);
    }
    for (const apq::v1::PathHolder& holder : entry.processes()) {
      ProfileSample of_holder = of_entry;
      of_holder.labels.emplace_back("process", holder.comm());
      of_holder.labels.emplace_back("cgroup", holder.cgroup());
      if (!holder.host().empty()) of_holder.labels.emplace_back("host", holder.host());
      of_holder.numeric_labels.emplace_back("pid", holder.tgid());
      AddInUse(of_holder, holder.bytes(), filter, holder.classes(), &profile.samples);
    }
    if (entry.bytes_allocated() > 0) {
      ProfileSample allocated = of_entry;
      allocated.alloc_bytes = entry.bytes_allocated();
      profile.samples.push_back(std::move(allocated));
    }
  }
  return profile;
}

}  // namespace apq
