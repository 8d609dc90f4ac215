#include "aggregator/ingest_service.h"

#include <deque>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "aggregator/grpc_peer.h"
#include "common/grpc_status.h"

namespace apq {
namespace {

constexpr size_t kMaxWantedTables = 4096;  // a kernel and its modules, with room

// One agent's stream: a Hello, then reports (and symbol tables when asked),
// one report at a time: the next is read once the previous one's outcome is
// known (after its commit), so acks go out in order and each means stored.
class IngestReactor final : public grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage> {
 public:
  IngestReactor(Fleet* fleet, PeerGrants grants, HostRateLimiter* rate)
      : fleet_(fleet), grants_(std::move(grants)), rate_(rate) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return End(grpc::Status::OK);  // the agent closed the stream, or went away
    if (epoch_ == 0) return OnHello();
    if (!rate_->Take(host_key_, in_.ByteSizeLong(), fleet_->NowMillis())) {
      return Refuse(Refusal::kHostRate, absl::ResourceExhaustedError(absl::StrCat(
                                            "host ", host_key_,
                                            " sent more than the aggregator's "
                                            "--max-host-bytes-per-second: this stream ends, reconnect later")));
    }
    if (in_.has_symbols()) {
      absl::StatusOr<bool> stored = fleet_->PutSymbols(epoch_, in_.symbols());
      if (!stored.ok()) return EndWith(stored.status());
      return StartRead(&in_);
    }
    if (!in_.has_report()) {
      return Refuse(Refusal::kInvalidMessage, absl::InvalidArgumentError("expected a report or symbols"));
    }
    for (const apq::v1::CodeObject& object : in_.report().objects()) {
      if (object.name() != "[unknown]" && !object.build_id().empty() && wanted_.size() < kMaxWantedTables) {
        wanted_.emplace(object.name(), object.build_id());
      }
    }
    const uint64_t sequence = in_.report().sequence();
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    fleet_->ApplyThen(epoch_, std::move(*in_.mutable_report()),
                      [this, sequence](absl::StatusOr<EpochState::Outcome> outcome) { OnApplied(sequence, outcome); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    if (!ok) broken_ = true;  // the agent is gone: the next read fails and ends the stream
    if (!out_.empty() && !broken_) {
      StartWrite(&out_.front());
      return;
    }
    out_.clear();
    writing_ = false;
    if (finish_) Finish(*finish_);
  }

  void OnDone() override {
    if (epoch_ != 0) fleet_->Detach(epoch_);
    bool last;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      last = pending_ == 0;
    }
    if (last) delete this;
  }

 private:
  void OnHello() {
    if (!in_.has_hello()) {
      return Refuse(Refusal::kInvalidMessage, absl::InvalidArgumentError("the first message must be a hello"));
    }
    if (absl::Status valid = ValidateHello(in_.hello()); !valid.ok()) return Refuse(Refusal::kInvalidMessage, valid);
    if (absl::Status granted = grants_.MayReport(in_.hello().cluster(), in_.hello().host()); !granted.ok()) {
      return Refuse(Refusal::kReportNotGranted, granted);
    }
    host_key_ = absl::StrCat(in_.hello().cluster(), "/", in_.hello().host());
    uint64_t last_sequence = 0;
    absl::StatusOr<int64_t> epoch = fleet_->Attach(in_.hello(), &last_sequence);
    if (!epoch.ok()) return EndWith(epoch.status());
    epoch_ = *epoch;
    if (!in_.hello().kernel().build_id().empty()) wanted_.emplace("vmlinux", in_.hello().kernel().build_id());
    apq::v1::AggregatorMessage reply;
    reply.mutable_ack()->set_sequence(last_sequence);  // what is stored already need not come again
    Send(std::move(reply));
    AskForSymbols();
    StartRead(&in_);
  }

  // On the committer thread, or at once for what needs no commit.
  void OnApplied(uint64_t sequence, const absl::StatusOr<EpochState::Outcome>& outcome) {
    bool ended, last;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      ended = done_;
      last = pending_ == 0;
    }
    if (ended) {
      if (last) delete this;
      return;
    }
    if (!outcome.ok()) return EndWith(outcome.status());
    apq::v1::AggregatorMessage answer;
    if (*outcome == EpochState::Outcome::kNeedSnapshot) {
      answer.mutable_need_snapshot();
    } else {
      answer.mutable_ack()->set_sequence(sequence);
    }
    Send(std::move(answer));
    AskForSymbols();
    StartRead(&in_);
  }

  // Asks this stream for the tables its frames need that no other stream
  // is uploading (see Fleet::NeedSymbols).
  void AskForSymbols() {
    for (auto want = wanted_.begin(); want != wanted_.end();) {
      auto current = want++;
      Fleet::SymbolNeed need = fleet_->NeedSymbols(current->first, current->second, epoch_);
      if (need == Fleet::SymbolNeed::kStored) {
        wanted_.erase(current);
      } else if (need == Fleet::SymbolNeed::kAskThisStream) {
        apq::v1::AggregatorMessage ask;
        ask.mutable_need_symbols()->set_object(current->first);
        ask.mutable_need_symbols()->set_build_id(current->second);
        Send(std::move(ask));
      }
    }
  }

  void Send(apq::v1::AggregatorMessage message) {
    absl::MutexLock lock(&mu_);
    if (broken_ || finish_) return;
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  // Counts the refusal, and ends the stream with it.
  void Refuse(Refusal why, const absl::Status& status) {
    fleet_->refusals().Count(why);
    End(ToGrpc(status));
  }

  // Ends the stream with what the fleet answered. The fleet counts its own
  // refusals (cluster limits); what it finds invalid is a malformed or
  // oversized message, counted here.
  void EndWith(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kInvalidArgument) fleet_->refusals().Count(Refusal::kInvalidMessage);
    End(ToGrpc(status));
  }

  // Ends the stream once what is queued is written.
  void End(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (finish_) return;
    finish_ = std::move(status);
    if (!writing_) Finish(*finish_);
  }

  Fleet* const fleet_;
  const PeerGrants grants_;
  HostRateLimiter* const rate_;
  std::string host_key_;                                             // cluster/host, from the Hello
  apq::v1::AgentMessage in_;                                         // one read at a time
  int64_t epoch_ = 0;                                                // 0 until the Hello; touched only between reads
  absl::flat_hash_set<std::pair<std::string, std::string>> wanted_;  // tables not stored yet, likewise

  absl::Mutex mu_;
  std::deque<apq::v1::AggregatorMessage> out_ ABSL_GUARDED_BY(mu_);  // front: being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // reports waiting for their outcome
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  return new IngestReactor(fleet_, GrantsOf(*context, client_certificates_), rate_);
}

}  // namespace apq
