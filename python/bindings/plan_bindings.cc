// Fault specs, unit granularities, the seeded PRNG and ATOM's decision table for Python. Python
// never re-parses a spec: rcsim.faults reads the rules this parser returns, so a spec means the
// same thing in C++ and in Python, and a malformed one fails with the same column-accurate message.
#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dtype.h"
#include "core/limits.h"
#include "core/prng.h"
#include "fault_injection/plan/fault_plan.h"
#include "python/bindings/bindings.h"

namespace py = pybind11;

namespace rcsim::python {
namespace {

std::string unit_count_text(const UnitCount& k) {
  switch (k.mode) {
    case UnitCount::Mode::kNumber:
      return std::to_string(k.number);
    case UnitCount::Mode::kMid:
      return "mid";
    case UnitCount::Mode::kLast:
      return "last";
    case UnitCount::Mode::kAll:
      return "all";
    case UnitCount::Mode::kSeed:
      return "seed";
  }
  return "?";
}

// One rule as a dict; `k` is the effective k (the kind's default when the spec gave none).
py::dict rule_dict(const FaultRule& r) {
  py::dict d;
  d["site"] = std::string(fault_site_name(r.site));
  d["kind"] = std::string(fault_kind_name(r.kind));
  d["unit"] = std::string(torn_unit_name(r.unit));
  d["tile"] = r.tile_tokens;
  d["k"] = unit_count_text(r.k_or_default());
  d["p"] = py::make_tuple(r.p.numerator, r.p.denominator);
  d["region"] = std::string(fault_region_name(r.region));
  d["after"] = r.late_after_calls;
  d["error"] = r.late_error == LateError::kSticky ? "sticky" : "launch";
  d["cost_us"] = r.rebuild_cost_us;
  d["call"] = r.on_call;
  d["ratio"] = py::make_tuple(r.ratio.numerator, r.ratio.denominator);
  d["text"] = to_string(r);
  return d;
}

TornUnit unit_from(const std::string& name) {
  if (name == "head") return TornUnit::kHead;
  if (name == "token") return TornUnit::kToken;
  if (name == "tile") return TornUnit::kTile;
  throw py::value_error(fmt::format("unit '{}' is not head, token or tile", name));
}

// count random values of `dtype` (bf16, fp16, fp32) as raw little-endian bytes; magnitudes in
// [lo, hi), signed or positive. Never zero when lo > 0 (zeros hide unwritten outputs).
py::bytes random_values(uint64_t seed, const std::string& label, int64_t count,
                        const std::string& dtype, float lo, float hi, bool signed_values) {
  const auto t = dtype_from_name(dtype);
  if (!t || !(*t == DType::kBF16 || *t == DType::kFP16 || *t == DType::kFP32)) {
    throw py::value_error(
        fmt::format("random_values: dtype '{}' is not bf16, fp16 or fp32", dtype));
  }
  if (count < 0 || count > limits::kHostTensorBytesMax / 4) {
    throw py::value_error(fmt::format("random_values: count {} outside [0, {}]", count,
                                      limits::kHostTensorBytesMax / 4));
  }
  if (!(lo >= 0.0f && hi > lo)) throw py::value_error("random_values: need 0 <= lo < hi");
  Prng prng = Prng::stream(seed, label);
  const int64_t size = dtype_size_bytes(*t);
  std::string out(static_cast<std::size_t>(count * size), '\0');
  for (int64_t i = 0; i < count; ++i) {
    float v = prng.nonzero_float(lo, hi);
    if (!signed_values && v < 0.0f) v = -v;
    if (*t == DType::kFP32) {
      std::memcpy(out.data() + i * 4, &v, 4);
    } else {
      const uint16_t bits = float_to_activation(v, *t);
      std::memcpy(out.data() + i * 2, &bits, 2);
    }
  }
  return py::bytes(out);
}

py::bytes random_bytes(uint64_t seed, const std::string& label, int64_t count) {
  if (count < 0 || count > limits::kHostTensorBytesMax) {
    throw py::value_error(fmt::format("random_bytes: count {} out of range", count));
  }
  Prng prng = Prng::stream(seed, label);
  std::string out(static_cast<std::size_t>(count), '\0');
  for (int64_t i = 0; i < count; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>(prng.next_u64() >> 56);
  return py::bytes(out);
}

}  // namespace

void register_plans(py::module_& m) {
  using py::arg;
  m.def(
      "parse_fault_plan",
      [](const std::string& spec) {
        py::list rules;
        for (const FaultRule& r : parse_fault_plan(spec).rules) rules.append(rule_dict(r));
        return rules;
      },
      arg("spec"), "The rules of a fault spec (docs/fault-spec.md); ValueError when malformed.");
  m.def(
      "canonical_fault_spec",
      [](const std::string& spec) { return to_string(parse_fault_plan(spec)); }, arg("spec"));
  m.def(
      "sample_swarm_plan",
      [](uint64_t seed) {
        Prng prng = Prng::stream(seed, "python.swarm");
        return to_string(sample_swarm_plan(prng));
      },
      arg("seed"), "The swarm plan one seed gives (FoundationDB's two-level activation).");
  m.def(
      "units_at_granularity",
      [](const std::string& unit, int64_t tile, int64_t native_total, int64_t tokens) {
        return units_at_granularity(unit_from(unit), tile, native_total, tokens);
      },
      arg("unit"), arg("tile"), arg("native_units_total"), arg("tokens"));
  m.def(
      "native_units_for",
      [](const std::string& unit, int64_t tile, int64_t k, int64_t native_total, int64_t tokens) {
        return native_units_for(unit_from(unit), tile, k, native_total, tokens);
      },
      arg("unit"), arg("tile"), arg("k"), arg("native_units_total"), arg("tokens"));

  py::class_<Prng>(m, "Prng", "rcsim's seeded xoshiro256** (core/prng.h)")
      .def(py::init<uint64_t>(), arg("seed"))
      .def_static(
          "stream",
          [](uint64_t seed, const std::string& label) { return Prng::stream(seed, label); },
          arg("seed"), arg("label"))
      .def("next_u64", &Prng::next_u64)
      .def("below",
           [](Prng& p, uint64_t bound) {
             if (bound < 1) throw py::value_error("below(0)");
             return p.below(bound);
           })
      .def("range",
           [](Prng& p, int64_t lo, int64_t hi) {
             if (lo > hi) throw py::value_error("range: lo > hi");
             return p.range(lo, hi);
           })
      .def("chance",
           [](Prng& p, uint64_t numerator, uint64_t denominator) {
             if (denominator < 1 || numerator > denominator) throw py::value_error("bad ratio");
             return p.chance(numerator, denominator);
           })
      .def("unit_float", &Prng::unit_float);
  m.def("random_values", &random_values, arg("seed"), arg("label"), arg("count"), arg("dtype"),
        arg("lo"), arg("hi"), arg("signed"));
  m.def("random_bytes", &random_bytes, arg("seed"), arg("label"), arg("count"));
}

void register_dispatch(py::module_& m) {
  using py::arg;
  m.def(
      "decide",
      [](bool has_rotary, bool has_q_norm, bool has_k_norm, int64_t sliding_window,
         int64_t head_dim, bool qkv_present, const std::string& logic, bool after_failure) {
        LayerSpec spec;
        spec.has_rotary = has_rotary;
        spec.has_q_norm = has_q_norm;
        spec.has_k_norm = has_k_norm;
        spec.sliding_window = sliding_window;
        spec.attn.head_dim = head_dim;
        if (logic == "pr279") {
          spec.logic = DecisionLogic::kPr279;
        } else if (logic == "pr-base") {
          spec.logic = DecisionLogic::kPrBase;
        } else {
          throw py::value_error(fmt::format("logic '{}' is not pr279 or pr-base", logic));
        }
        if (after_failure && spec.logic != DecisionLogic::kPr279) {
          throw py::value_error("after_failure applies to pr279 only (pr-base has no fallback)");
        }
        const Branch b = after_failure ? RopeCacheDispatcher::decide_after_failure(spec)
                                       : RopeCacheDispatcher::decide(spec, qkv_present);
        return std::string(b == Branch::kFused ? "A" : b == Branch::kRopeCache ? "B" : "C");
      },
      arg("has_rotary"), arg("has_q_norm"), arg("has_k_norm"), arg("sliding_window"),
      arg("head_dim"), arg("qkv_present"), arg("logic"), arg("after_failure"));
}

}  // namespace rcsim::python
