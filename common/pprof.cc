#include "common/pprof.h"

#include <zlib.h>

#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "page_tracker.h"
#include "pprof/profile.pb.h"

namespace apq {
namespace {

// Strings are interned into the profile's table; index 0 is "".
class StringTable {
 public:
  explicit StringTable(apq::pprof::Profile* profile) : profile_(profile) { Index(""); }
  int64_t Index(const std::string& text) {
    auto [entry, added] = indexes_.try_emplace(text, profile_->string_table_size());
    if (added) profile_->add_string_table(text);
    return entry->second;
  }

 private:
  apq::pprof::Profile* profile_;
  absl::flat_hash_map<std::string, int64_t> indexes_;
};

// Mappings, functions and locations, created on first use.
class Symbols {
 public:
  Symbols(apq::pprof::Profile* profile, StringTable* strings,
          const absl::flat_hash_map<std::string, std::string>* build_ids)
      : profile_(profile), strings_(strings), build_ids_(build_ids) {}

  uint64_t LocationOf(const ProfileFrame& frame) {
    auto [entry, added] = locations_.try_emplace(std::make_pair(frame.object, frame.function), 0);
    if (!added) return entry->second;
    apq::pprof::Mapping* mapping = MappingOf(frame.object);
    apq::pprof::Function* function = profile_->add_function();
    function->set_id(static_cast<uint64_t>(profile_->function_size()));
    function->set_name(strings_->Index(frame.function));
    function->set_system_name(function->name());
    apq::pprof::Location* location = profile_->add_location();
    location->set_id(static_cast<uint64_t>(profile_->location_size()));
    location->set_mapping_id(mapping->id());
    // Kernel addresses never leave the host: a location's address is its
    // mapping's start plus its rank there, distinct as pprof needs.
    location->set_address(mapping->memory_limit());
    mapping->set_memory_limit(mapping->memory_limit() + 1);
    location->add_line()->set_function_id(function->id());
    return entry->second = location->id();
  }

 private:
  apq::pprof::Mapping* MappingOf(const std::string& object) {
    auto [entry, added] = mappings_.try_emplace(object, profile_->mapping_size());
    if (!added) return profile_->mutable_mapping(entry->second);
    apq::pprof::Mapping* mapping = profile_->add_mapping();
    mapping->set_id(static_cast<uint64_t>(profile_->mapping_size()));
    mapping->set_filename(strings_->Index(object));
    if (auto build_id = build_ids_->find(object); build_id != build_ids_->end()) {
      mapping->set_build_id(strings_->Index(build_id->second));
    }
    // Disjoint ranges, one per mapping, so that no address is in two.
    mapping->set_memory_start(static_cast<uint64_t>(profile_->mapping_size()) << 32);
    mapping->set_memory_limit(mapping->memory_start());
    mapping->set_has_functions(true);
    return mapping;
  }

  apq::pprof::Profile* profile_;
  StringTable* strings_;
  const absl::flat_hash_map<std::string, std::string>* build_ids_;
  absl::flat_hash_map<std::string, int> mappings_;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> locations_;
};

absl::StatusOr<std::string> Gzipped(const std::string& bytes) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("zlib: deflateInit2 failed");
  }
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) return absl::InternalError("zlib: deflate did not finish");
  return out;
}

}  // namespace

absl::StatusOr<std::string> GzippedProfile(const MemoryProfile& input) {
  apq::pprof::Profile profile;
  StringTable strings(&profile);
  Symbols symbols(&profile, &strings, &input.build_ids);
  for (const auto& [type, unit] : {std::pair{"inuse_space", "bytes"}, std::pair{"inuse_objects", "count"},
                                   std::pair{"alloc_space", "bytes"}, std::pair{"alloc_objects", "count"}}) {
    apq::pprof::ValueType* sample_type = profile.add_sample_type();
    sample_type->set_type(strings.Index(type));
    sample_type->set_unit(strings.Index(unit));
  }
  profile.set_default_sample_type(profile.sample_type(0).type());
  profile.mutable_period_type()->set_type(strings.Index("space"));
  profile.mutable_period_type()->set_unit(strings.Index("bytes"));
  profile.set_period(APQ_PAGE_SIZE);
  profile.set_time_nanos(input.time_nanos);
  profile.set_duration_nanos(input.duration_nanos);
  for (const std::string& comment : input.comments) profile.add_comment(strings.Index(comment));
  for (const ProfileSample& in : input.samples) {
    apq::pprof::Sample* sample = profile.add_sample();
    for (auto frame = in.frames.rbegin(); frame != in.frames.rend(); ++frame) {
      sample->add_location_id(symbols.LocationOf(*frame));  // leaf first
    }
    for (double bytes : {in.inuse_bytes, in.alloc_bytes}) {
      sample->add_value(std::llround(bytes));
      sample->add_value(std::llround(bytes / APQ_PAGE_SIZE));
    }
    for (const auto& [key, value] : in.labels) {
      apq::pprof::Label* label = sample->add_label();
      label->set_key(strings.Index(key));
      label->set_str(strings.Index(value));
    }
    for (const auto& [key, value] : in.numeric_labels) {
      apq::pprof::Label* label = sample->add_label();
      label->set_key(strings.Index(key));
      label->set_num(value);
    }
  }
  return Gzipped(profile.SerializeAsString());
}

absl::Status WriteProfile(const MemoryProfile& profile) {
  absl::StatusOr<std::string> gzipped = GzippedProfile(profile);
  if (!gzipped.ok()) return gzipped.status();
  std::cout.write(gzipped->data(), static_cast<std::streamsize>(gzipped->size()));
  std::cout.flush();
  return std::cout ? absl::OkStatus() : absl::DataLossError("could not write the profile to standard output");
}

}  // namespace apq
