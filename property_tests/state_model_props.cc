// Goal (issue 5, property 7, stateful model): over any sequence of the commands a serving
// process sees - call rope_cache on a batch, arm a fault, clear faults, make the fused kernel
// unavailable (a CK-free build), add a layer instance, run a burst of calls from several threads -
// a small model predicts each call's branch, whether it backed up, whether it logged the
// once-per-process warning, the fallback counters, the log, and the bytes of qkv, the returned
// q/k and the caches; the real dispatcher must agree after every command.
// Method: rc::state. The system under test is one DispatchProcess shared by all layer instances;
// the kernel set is the CPU backend behind FaultyKernelSet, rebuilt (with the dispatchers, which
// hold no state of their own) whenever the fault plan changes, while the process - warnings,
// sticky disable, counters - persists, as it does in ATOM. Cache contents are checked per call
// against the model's predicted path (the fused kernel, or the fallback in the layer's order),
// byte for byte, on freshly sentinel-filled caches.
// Negative test: warn-per-call must make the model and the system disagree.
#include <rapidcheck/state.h>

#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/mutants.h"
#include "fakes/faults/faulty_kernels.h"
#include "kernels/cpu/cpu_backend.h"
#include "property_tests/support/prop_backend.h"
#include "fault_injection/plan/fault_plan.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/compare.h"
#include "property_tests/support/dispatch_run.h"
#include "property_tests/support/paths.h"

namespace rcsim {
inline void showValue(FallbackPolicy p, std::ostream& os) { os << policy_name(p); }
}  // namespace rcsim

namespace rcsim::props {
namespace {

enum class Armed : uint8_t { kNone, kLaunch, kTorn, kInvalid };
constexpr std::string_view armed_spec(Armed a) {
  switch (a) {
    case Armed::kNone: return "";
    case Armed::kLaunch: return "fused:launch";
    case Armed::kTorn: return "fused:torn(k=mid)";
    case Armed::kInvalid: return "fused:invalid";
  }
  return "";
}
constexpr FailureClass armed_class(Armed a) {
  return a == Armed::kInvalid ? FailureClass::kInvalidArgument : FailureClass::kLaunchFailure;
}

struct Model {
  std::vector<FallbackPolicy> layers;  // one entry per layer instance
  Armed armed = Armed::kNone;
  bool unavailable = false;     // the module is missing from now on (ClearFaults does not fix it)
  bool fused_disabled = false;  // the sticky policy saw "unavailable" in this process
  std::set<FailureClass> warned;
  std::map<FailureClass, int64_t> fallbacks;
};

struct Sut {
  explicit Sut(CallCase c) : call_case(std::move(c)) { rebuild(""); }
  // A new kernel set for the new plan; the process (and so its state) survives.
  void rebuild(const std::string& spec) {
    plan_spec = spec;
    session_layers.clear();
    faulty.reset();
    faulty = std::make_unique<FaultyKernelSet>(backend.kernels(), parse_fault_plan(spec), 7);
    for (const LayerSpec& s : specs) {
      session_layers.push_back(std::make_unique<RopeCacheDispatcher>(
          s, spec.empty() ? backend.kernels() : faulty->kernels(), process));
    }
  }
  CallCase call_case;
  PropBackend backend;
  DispatchProcess process;
  std::unique_ptr<FaultyKernelSet> faulty;
  std::vector<LayerSpec> specs;
  std::vector<std::unique_ptr<RopeCacheDispatcher>> session_layers;
  std::string plan_spec;
};

std::string plan_for(const Model& m) {
  if (m.unavailable) return "fused:unavailable";
  return std::string(armed_spec(m.armed));
}

// What the model says one call on `layer` does, and the state change it causes.
struct Prediction {
  Branch branch;
  bool attempted;
  std::optional<FailureClass> failure;
  bool warns;
};
Prediction predict_and_apply(Model& m, std::size_t layer) {
  const FallbackPolicy policy = m.layers[layer];
  Prediction p{Branch::kFused, true, std::nullopt, false};
  if (m.unavailable) {
    p.failure = FailureClass::kUnavailable;
    p.attempted = !(policy == FallbackPolicy::kSticky && m.fused_disabled);
    if (policy == FallbackPolicy::kSticky) m.fused_disabled = true;
  } else if (m.armed != Armed::kNone) {
    p.failure = armed_class(m.armed);
  }
  if (p.failure) {
    p.branch = Branch::kNonFused;
    p.warns = m.warned.insert(*p.failure).second;
    ++m.fallbacks[*p.failure];
  }
  return p;
}

// One real call, checked against a prediction (bytes included).
DispatchRun run_one(Sut& sut, std::size_t layer) {
  DispatchRun run;
  run.tensors = make_call_tensors(sut.call_case);
  RopeCacheInputs in;
  in.qkv = run.tensors.qkv.view();
  in.positions = run.tensors.positions.view();
  in.slot_mapping = run.tensors.slots.view();
  in.cos_sin_cache = run.tensors.cos_sin.view();
  in.q_weight = run.tensors.q_weight.view();
  in.k_weight = run.tensors.k_weight.view();
  in.cache = run.tensors.cache_views();
  try {
    RopeCacheResult r = sut.session_layers[layer]->rope_cache(in);
    run.record = r.record;
    run.q_result = HostTensor(r.q.dtype, {r.q.size(0), r.q.size(1), r.q.size(2)});
    copy_view(r.q, run.q_result.view());
  } catch (const DispatchError& e) {
    run.surfaced = e.failure_class();
    run.surfaced_what = e.what();
  }
  return run;
}

void check_call(const Sut& sut, const Model& before_model, std::size_t layer, const Prediction& p,
                const DispatchRun& run, bool check_warning) {
  if (run.surfaced) RC_FAIL("unexpected DispatchError: " + run.surfaced_what);
  const DispatchRecord& rec = *run.record;
  RC_ASSERT(rec.branch == p.branch);
  RC_ASSERT(rec.fused_attempted == p.attempted);
  RC_ASSERT(rec.failure == p.failure);
  const FallbackPolicy policy = before_model.layers[layer];
  RC_ASSERT(rec.backup_taken == (p.attempted && policy != FallbackPolicy::kOutOfPlace));
  if (check_warning) RC_ASSERT(rec.warning_logged == p.warns);
  // Bytes: the fused path, or the fallback in the layer's order, on fresh sentinel caches.
  const CallCase& c = sut.call_case;
  if (p.branch == Branch::kFused) {
    const CallTensors fused = run_fused_path(c);
    if (auto d = first_qkv_bit_difference(c.cfg, run.tensors.qkv, fused.qkv)) RC_FAIL(*d);
    if (auto d = first_byte_difference(run.tensors.k_cache, fused.k_cache, "k_cache")) RC_FAIL(*d);
    if (auto d = first_byte_difference(run.tensors.v_cache, fused.v_cache, "v_cache")) RC_FAIL(*d);
  } else {
    const CallTensors ref = run_nonfused_path(
        c, fallback_order_of(policy));
    HostTensor q_ref(c.cfg.act_dtype, {c.num_tokens, c.cfg.num_heads_q, c.cfg.head_dim});
    copy_view(ref.split().q, q_ref.view());
    if (auto d = first_byte_difference(run.q_result, q_ref, "returned q")) RC_FAIL(*d);
    if (auto d = first_byte_difference(run.tensors.k_cache, ref.k_cache, "k_cache")) RC_FAIL(*d);
    if (auto d = first_byte_difference(run.tensors.v_cache, ref.v_cache, "v_cache")) RC_FAIL(*d);
  }
}

void check_process(const Sut& sut, const Model& m) {
  int64_t total = 0;
  for (FailureClass cls : kAllFailureClasses) {
    const auto it = m.fallbacks.find(cls);
    const int64_t want = it == m.fallbacks.end() ? 0 : it->second;
    RC_ASSERT(sut.process.fallback_count(cls) == want);
    total += want;
  }
  RC_ASSERT(sut.process.fallback_count_total() == total);
  int64_t warning_lines = 0;
  for (const std::string& line : sut.process.log_lines()) {
    if (line.find("falling back") != std::string::npos) ++warning_lines;
  }
  RC_ASSERT(warning_lines == static_cast<int64_t>(m.warned.size()));
  RC_ASSERT(sut.process.fused_disabled() == m.fused_disabled);
}

using Cmd = rc::state::Command<Model, Sut>;

struct CallBatch : Cmd {
  std::size_t layer;
  explicit CallBatch(const Model& m)
      : layer(*rc::gen::inRange<std::size_t>(0, m.layers.size())) {}
  void apply(Model& m) const override { predict_and_apply(m, layer); }
  void run(const Model& m, Sut& sut) const override {
    Model after = m;
    const Prediction p = predict_and_apply(after, layer);
    const DispatchRun r = run_one(sut, layer);
    check_call(sut, m, layer, p, r, /*check_warning=*/true);
    check_process(sut, after);
  }
  void show(std::ostream& os) const override { os << "CallBatch(layer " << layer << ")"; }
};

struct ArmFault : Cmd {
  Armed armed = *rc::gen::element(Armed::kLaunch, Armed::kTorn, Armed::kInvalid);
  void apply(Model& m) const override { m.armed = armed; }
  void run(const Model& m, Sut& sut) const override {
    Model after = m;
    apply(after);
    sut.rebuild(plan_for(after));
  }
  void show(std::ostream& os) const override { os << "ArmFault(" << armed_spec(armed) << ")"; }
};

struct ClearFaults : Cmd {
  void apply(Model& m) const override { m.armed = Armed::kNone; }
  void run(const Model& m, Sut& sut) const override {
    Model after = m;
    apply(after);
    sut.rebuild(plan_for(after));
  }
  void show(std::ostream& os) const override { os << "ClearFaults"; }
};

struct MakeUnavailable : Cmd {
  void apply(Model& m) const override { m.unavailable = true; }
  void run(const Model& m, Sut& sut) const override {
    Model after = m;
    apply(after);
    sut.rebuild(plan_for(after));
  }
  void show(std::ostream& os) const override { os << "MakeUnavailable"; }
};

struct AddLayer : Cmd {
  FallbackPolicy policy = *rc::gen::elementOf(
      std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end()));
  void checkPreconditions(const Model& m) const override {
    RC_PRE(static_cast<int64_t>(m.layers.size()) < 6);
  }
  void apply(Model& m) const override { m.layers.push_back(policy); }
  void run(const Model& m, Sut& sut) const override {
    (void)m;
    sut.specs.push_back(layer_spec_for(sut.call_case, policy));
    sut.rebuild(sut.plan_spec);
  }
  void show(std::ostream& os) const override { os << "AddLayer(" << policy_name(policy) << ")"; }
};

// Several threads, one call each, on layers chosen per thread. Their order is not determined, so
// the model predicts the multiset: per-call branch and attempt are order-free except for sticky
// disabling (checked as a set), warnings and counters are checked on the process afterwards.
struct Burst : Cmd {
  std::vector<std::size_t> layers_per_thread;
  explicit Burst(const Model& m) {
    const int threads = *rc::gen::inRange(2, 5);
    for (int i = 0; i < threads; ++i) {
      layers_per_thread.push_back(*rc::gen::inRange<std::size_t>(0, m.layers.size()));
    }
  }
  void apply(Model& m) const override {
    for (std::size_t l : layers_per_thread) predict_and_apply(m, l);
  }
  void run(const Model& m, Sut& sut) const override {
    Model after = m;
    apply(after);
    std::vector<DispatchRun> runs(layers_per_thread.size());
    std::vector<std::thread> pool;
    for (std::size_t i = 0; i < layers_per_thread.size(); ++i) {
      pool.emplace_back([&, i] { runs[i] = run_one(sut, layers_per_thread[i]); });
    }
    for (auto& t : pool) t.join();
    int64_t warned_now = 0;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].surfaced) RC_FAIL("unexpected DispatchError: " + runs[i].surfaced_what);
      Model scratch = m;  // the branch of one call does not depend on the others' order
      const Prediction p = predict_and_apply(scratch, layers_per_thread[i]);
      RC_ASSERT(runs[i].record->branch == p.branch);
      if (runs[i].record->warning_logged) ++warned_now;
    }
    RC_ASSERT(warned_now == static_cast<int64_t>(after.warned.size() - m.warned.size()));
    check_process(sut, after);
  }
  void show(std::ostream& os) const override {
    os << "Burst(layers";
    for (std::size_t l : layers_per_thread) os << " " << l;
    os << ")";
  }
};

void prop_state_model() {
  CaseOptions options;
  options.allow_partial_rotary = false;
  options.tokens_max = 8;
  options.head_dim = 128;  // branch C writes the fused kernel's V layout (see restore_props.cc)
  const CallCase c = *gen_call_case(options);
  classify("kv", kv_cache_dtype_name(c.cfg.kv_cache_dtype));
  Model initial;
  initial.layers.push_back(*rc::gen::elementOf(
      std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end())));
  Sut sut(c);
  sut.specs.push_back(layer_spec_for(c, initial.layers[0]));
  sut.rebuild("");
  rc::state::check(initial, sut,
                   rc::state::gen::execOneOfWithArgs<CallBatch, CallBatch, ArmFault, ClearFaults,
                                                     MakeUnavailable, AddLayer, Burst>());
}

RCSIM_PROP_WITH(StateModelProps, DispatcherAgreesWithModelAfterEveryCommand,
                (RunOptions{.cases_percent = 30}), ()) {
  prop_state_model();
}

TEST(StateModelPropsNegative, WarnPerCallMakesModelAndSystemDisagree) {
  ScopedMutant mutant(Mutant::kWarnPerCall);
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  options.cases_percent = 30;
  expect_failed(check("StateModelProps/Model[warn-per-call]", &prop_state_model, options),
                "warn-per-call");
}

}  // namespace
}  // namespace rcsim::props
