#include "common/flag_names.h"

#include <algorithm>

#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace apq {
namespace {

constexpr size_t kMaxFlagFileDepth = 16, kMaxFlagFilesRead = 256, kMaxFlagFileBytes = 1 << 20;

// The files a --flagfile argument or line names ("--flagfile=a,b"); none if it is another flag.
std::vector<std::string> FlagFilesNamed(absl::string_view arg) {
  arg = absl::StripAsciiWhitespace(arg);
  if (!absl::ConsumePrefix(&arg, "--flagfile=") && !absl::ConsumePrefix(&arg, "-flagfile=")) return {};
  return absl::StrSplit(arg, ',', absl::SkipEmpty());
}

// A line abseil takes: a flag (--name or --name=value), a comment (#...)
// or nothing. Abseil would echo any other line, bytes and all, in an error
// of its own, one per line.
absl::Status CheckLine(const std::string& path, int number, absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  const bool printable = std::all_of(line.begin(), line.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;  // UTF-8 passes; control bytes do not
  });
  if (line.empty() || line[0] == '#' || (line[0] == '-' && printable)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("flag file ", path, " line ", number, " is not a flag (--name=value) or a comment"));
}

struct FlagFileWalk {
  const ReadFlagFile& read;
  std::vector<std::string> chain;  // the files being read, outermost first
  size_t files_read = 0;

  absl::Status Visit(const std::string& path) {
    if (std::find(chain.begin(), chain.end(), path) != chain.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag file ", path, " includes itself (", absl::StrJoin(chain, " -> "), " -> ", path, ")"));
    }
    if (chain.size() >= kMaxFlagFileDepth) {
      return absl::InvalidArgumentError(absl::StrCat("flag files nest deeper than ", kMaxFlagFileDepth, " at ", path));
    }
    if (++files_read > kMaxFlagFilesRead) {
      return absl::InvalidArgumentError(absl::StrCat("flag files name more than ", kMaxFlagFilesRead, " files"));
    }
    absl::StatusOr<std::string> contents = read(path);
    if (!contents.ok()) return absl::OkStatus();  // abseil says what is wrong with an unreadable file
    if (contents->size() > kMaxFlagFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat("flag file ", path, " is over 1 MiB"));
    }
    chain.push_back(path);
    int number = 0;
    for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
      ++number;
      APQ_RETURN_IF_ERROR(CheckLine(path, number, line));
      for (const std::string& inner : FlagFilesNamed(line)) {
        if (absl::Status status = Visit(inner); !status.ok()) return status;
      }
    }
    chain.pop_back();
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status CheckFlagFiles(const std::vector<std::string>& args, const ReadFlagFile& read) {
  FlagFileWalk walk{read, {}, 0};
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    std::vector<std::string> files = FlagFilesNamed(args[i]);
    if ((args[i] == "--flagfile" || args[i] == "-flagfile") && i + 1 < args.size()) files = {args[i + 1]};
    for (const std::string& file : files) {
      if (absl::Status status = walk.Visit(file); !status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args;
  bool flags_ended = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !flags_ended && arg == "--") flags_ended = true;
    if (i > 0 && !flags_ended && arg.size() > 2 && arg[0] == '-') {
      size_t start = arg[1] == '-' ? 2 : 1;
      size_t end = arg.find('=');
      if (end == std::string::npos) end = arg.size();
      for (size_t c = start; c < end; ++c) {
        if (arg[c] == '-') arg[c] = '_';
      }
    }
    args.push_back(std::move(arg));
  }
  return args;
}

std::vector<std::string> ParseFlags(int argc, char** argv) {
  std::vector<std::string> normalized = NormalizeFlagNames(argc, argv);
  std::vector<char*> pointers;
  for (std::string& arg : normalized) pointers.push_back(arg.data());
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
  return std::vector<std::string>(positional.begin(), positional.end());
}

}  // namespace apq
