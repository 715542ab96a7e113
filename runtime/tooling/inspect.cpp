#include "runtime/tooling/inspect.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/src/plan_reader.h"
#include "support/file_util.h"

namespace mm::rt {

namespace {

using nlohmann::ordered_json;

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

ordered_json describe(const Plan& plan) {
  const auto& p = plan.def();
  const auto& m = *p.model();
  const auto& l = *p.limits();
  ordered_json j;
  j["file"] = plan.origin();
  j["file_bytes"] = plan.size_bytes();
  j["schema_version"] = p.schema_version();
  j["producer"] = str(p.producer());
  j["model_hash"] = p.model_hash();
  ordered_json targets = ordered_json::array();
  if (p.targets())
    for (const auto* t : *p.targets()) targets.push_back(t->str());
  j["targets"] = targets;
  j["tokenizer_file"] = str(p.tokenizer_file());
  j["chat_template_file"] = str(p.chat_template_file());

  ordered_json model;
  model["architecture"] = str(m.architecture());
  model["hidden_size"] = m.hidden_size();
  model["intermediate_size"] = m.intermediate_size();
  model["num_layers"] = m.num_layers();
  model["num_heads"] = m.num_heads();
  model["num_kv_heads"] = m.num_kv_heads();
  model["head_dim"] = m.head_dim();
  model["rotary_dim"] = m.rotary_dim();
  model["num_experts"] = m.num_experts();
  model["top_k"] = m.top_k();
  model["vocab_size"] = m.vocab_size();
  model["rope_theta"] = m.rope_theta();
  model["rms_norm_eps"] = m.rms_norm_eps();
  model["bos_token_id"] = m.bos_token_id();
  ordered_json eos = ordered_json::array();
  if (m.eos_token_ids())
    for (int64_t e : *m.eos_token_ids()) eos.push_back(e);
  model["eos_token_ids"] = eos;
  model["quant_method"] = str(m.quant_method());
  model["weight_dtype"] = plan_dtype_name(m.weight_dtype());
  j["model"] = model;

  ordered_json limits;
  limits["max_seq_len"] = l.max_seq_len();
  limits["max_batch"] = l.max_batch();
  limits["max_prefill_tokens"] = l.max_prefill_tokens();
  limits["kv_dtype"] = plan_dtype_name(l.kv_dtype());
  limits["kv_block_size"] = l.kv_block_size();
  j["limits"] = limits;

  uint64_t weight_bytes = 0, source_bytes = 0, sources = 0;
  std::map<std::string, uint64_t> by_cat;
  size_t nweights = p.weights() ? p.weights()->size() : 0;
  for (size_t i = 0; i < nweights; ++i) {
    const auto& w = *p.weights()->Get(i);
    for (const auto* s : *w.sources()) source_bytes += s->nbytes(), ++sources;
    if (w.transform() == plan::WeightTransform::CHECK_ZEROS) continue;
    weight_bytes += w.nbytes();
    std::string cat = str(w.category());
    by_cat[cat.empty() ? "other" : cat] += w.nbytes();
  }
  ordered_json weights;
  weights["count"] = nweights;
  weights["source_tensors"] = sources;
  weights["source_bytes"] = source_bytes;
  weights["device_bytes"] = weight_bytes;
  ordered_json cats = ordered_json::object();
  for (auto& [k, v] : by_cat) cats[k] = v;
  weights["bytes_by_category"] = cats;
  j["weights"] = weights;

  ordered_json kernels = ordered_json::array();
  size_t nkernels = p.kernels() ? p.kernels()->size() : 0;
  for (size_t i = 0; i < nkernels; ++i) {
    const auto& k = *p.kernels()->Get(i);
    ordered_json kj;
    kj["name"] = str(k.name());
    kj["kind"] = kind_name(k.kind());
    ordered_json params = ordered_json::object();
    if (k.params())
      for (const auto* pr : *k.params()) {
        // Integer parameters may carry their value in `f` too; print them as integers.
        if (pr->f() != 0.0 && pr->f() != static_cast<double>(pr->i())) params[pr->name()->str()] = pr->f();
        else params[pr->name()->str()] = pr->i();
      }
    kj["params"] = params;
    ordered_json block = ordered_json::array();
    if (k.block_dims())
      for (int b : *k.block_dims()) block.push_back(b);
    kj["block_dims"] = block;
    kj["dynamic_shared_bytes"] = k.dynamic_shared_bytes();
    ordered_json bins = ordered_json::array();
    if (k.binaries())
      for (const auto* b : *k.binaries()) {
        ordered_json bj;
        bj["arch"] = str(b->arch());
        bj["cubin_bytes"] = b->cubin() ? b->cubin()->size() : 0;
        bj["registers"] = b->registers();
        bj["shared_bytes"] = b->shared_bytes();
        bj["local_bytes"] = b->local_bytes();
        bins.push_back(bj);
      }
    kj["binaries"] = bins;
    kj["ptx_bytes"] = k.ptx() ? k.ptx()->size() : 0;
    kj["ptx_arch"] = str(k.ptx_arch());
    kernels.push_back(kj);
  }
  j["kernels"] = kernels;

  ordered_json programs = ordered_json::array();
  for (const auto* prog : *p.programs()) {
    ordered_json pj;
    pj["name"] = str(prog->name());
    pj["rank"] = prog->rank();
    const size_t n = prog->launches() ? prog->launches()->size() : 0;
    pj["launches"] = n;
    pj["max_tokens"] = prog->max_tokens();
    pj["arena_bytes"] = prog->arena_bytes();
    pj["buffers"] = prog->buffers() ? prog->buffers()->size() : 0;
    std::map<int, int> per_layer;
    std::map<std::string, int> per_kind;
    for (size_t i = 0; i < n; ++i) {
      const auto* l = prog->launches()->Get(i);
      ++per_layer[l->layer()];
      ++per_kind[kind_name(p.kernels()->Get(l->kernel())->kind())];
    }
    ordered_json pl = ordered_json::object();
    for (auto& [layer, c] : per_layer) pl[layer < 0 ? "model" : std::to_string(layer)] = c;
    pj["launches_per_layer"] = pl;
    ordered_json pk = ordered_json::object();
    for (auto& [kind, c] : per_kind) pk[kind] = c;
    pj["launches_per_kind"] = pk;
    programs.push_back(pj);
  }
  j["programs"] = programs;

  // Tensor- and expert-parallel ranks (docs/parallel.md): each rank's weights are those its
  // launches name; under expert parallelism rank r holds experts [r*E/ep, (r+1)*E/ep).
  j["tp"] = p.tp();
  j["ep"] = p.ep();
  const int nranks = plan.ranks();
  const int64_t rank_experts = m.num_experts() / std::max(p.ep(), 1);
  ordered_json ranks = ordered_json::array();
  for (int r = 0; r < nranks; ++r) {
    std::set<uint32_t> used;
    for (const auto* prog : *p.programs())
      if (prog->rank() == r && prog->launches())
        for (const auto* l : *prog->launches())
          if (l->operands())
            for (const auto* o : *l->operands())
              if (o->kind() == plan::OperandKind::WEIGHT) used.insert(o->index());
    uint64_t bytes = 0, sliced = 0, expert_bytes = 0;
    for (uint32_t wi : used) {
      const auto* w = p.weights()->Get(wi);
      bytes += w->nbytes();
      if (str(w->category()) == "experts") expert_bytes += w->nbytes();
      bool any_slice = false;
      if (w->sources())
        for (const auto* s : *w->sources()) any_slice |= s->slice_dim() >= 0;
      sliced += any_slice;
    }
    ordered_json rj;
    rj["rank"] = r;
    rj["weights"] = used.size();
    rj["sliced_weights"] = sliced;
    rj["weight_bytes"] = bytes;
    rj["experts_first"] = p.ep() > 1 ? r * rank_experts : 0;
    rj["experts"] = rank_experts;
    rj["expert_bytes"] = expert_bytes;
    ranks.push_back(rj);
  }
  j["ranks"] = ranks;

  const bool fp8 = l.kv_dtype() == plan::DType::FP8_E4M3;
  const uint64_t kv_per_token = static_cast<uint64_t>(m.num_layers()) * 2 * m.num_kv_heads() *
                                (m.head_dim() * (fp8 ? 1 : 2) + (fp8 ? 4 : 0));
  ordered_json mem;
  mem["weights_bytes"] = weight_bytes;
  mem["arena_bytes"] = plan.max_arena_bytes();
  mem["kv_bytes_per_token"] = kv_per_token;
  mem["kv_bytes_at_limits"] = kv_per_token * static_cast<uint64_t>(l.max_seq_len()) *
                              static_cast<uint64_t>(l.max_batch());
  j["memory"] = mem;
  return j;
}

std::string gib(uint64_t b) {
  char buf[64];
  if (b >= (uint64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

void print_text(const ordered_json& j, std::ostream& out) {
  out << "plan " << j["file"].get<std::string>() << " (" << j["file_bytes"].get<uint64_t>()
      << " bytes), schema " << j["schema_version"] << ", producer " << j["producer"].get<std::string>() << "\n";
  out << "targets:";
  for (auto& t : j["targets"]) out << " " << t.get<std::string>();
  out << "\nmodel: " << j["model"]["architecture"].get<std::string>() << ", " << j["model"]["num_layers"]
      << " layers, hidden " << j["model"]["hidden_size"] << ", experts " << j["model"]["num_experts"]
      << " (top-" << j["model"]["top_k"] << "), heads " << j["model"]["num_heads"] << "/"
      << j["model"]["num_kv_heads"] << " x " << j["model"]["head_dim"] << ", vocab "
      << j["model"]["vocab_size"] << ", " << j["model"]["quant_method"].get<std::string>() << "\n";
  out << "limits: max_seq_len " << j["limits"]["max_seq_len"] << ", max_batch " << j["limits"]["max_batch"]
      << ", max_prefill_tokens " << j["limits"]["max_prefill_tokens"] << ", kv "
      << j["limits"]["kv_dtype"].get<std::string>() << " block " << j["limits"]["kv_block_size"] << "\n";
  out << "weights: " << j["weights"]["count"] << " (" << j["weights"]["source_tensors"]
      << " source tensors), " << gib(j["weights"]["device_bytes"].get<uint64_t>()) << "\n";
  for (auto& [cat, b] : j["weights"]["bytes_by_category"].items())
    out << "  " << cat << ": " << gib(b.get<uint64_t>()) << "\n";
  out << "kernels: " << j["kernels"].size() << "\n";
  for (auto& k : j["kernels"]) {
    out << "  " << k["kind"].get<std::string>() << " " << k["name"].get<std::string>();
    for (auto& b : k["binaries"]) {
      out << "  " << b["arch"].get<std::string>() << " " << b["cubin_bytes"] << " B";
      if (b["registers"].get<int>() >= 0) out << " regs " << b["registers"];
      if (b["shared_bytes"].get<int>() >= 0) out << " smem " << b["shared_bytes"];
    }
    if (k["ptx_bytes"].get<uint64_t>() > 0) out << "  ptx " << k["ptx_arch"].get<std::string>() << " " << k["ptx_bytes"] << " B";
    out << "\n";
  }
  const bool sharded = j["ranks"].size() > 1;
  if (sharded) {
    out << "parallel: " << j["ranks"].size() << " ranks, tp " << j["tp"] << ", ep " << j["ep"] << "\n";
    for (auto& r : j["ranks"]) {
      const int64_t e0 = r["experts_first"].get<int64_t>(), ne = r["experts"].get<int64_t>();
      out << "  rank " << r["rank"] << ": " << r["weights"] << " weights (" << r["sliced_weights"]
          << " sliced), " << gib(r["weight_bytes"].get<uint64_t>()) << "; experts " << e0 << ".."
          << e0 + ne - 1 << " (" << ne << "), " << gib(r["expert_bytes"].get<uint64_t>()) << "\n";
    }
  }
  for (auto& p : j["programs"]) {
    out << "program " << p["name"].get<std::string>();
    if (sharded) out << " (rank " << p["rank"] << ")";
    out << ": " << p["launches"] << " launches, max_tokens "
        << p["max_tokens"] << ", arena " << gib(p["arena_bytes"].get<uint64_t>()) << "\n   per layer:";
    for (auto& [layer, c] : p["launches_per_layer"].items()) out << " " << layer << "=" << c;
    out << "\n";
  }
  out << "memory: weights " << gib(j["memory"]["weights_bytes"].get<uint64_t>()) << ", arena "
      << gib(j["memory"]["arena_bytes"].get<uint64_t>()) << ", KV " << j["memory"]["kv_bytes_per_token"]
      << " bytes/token\n";
}

}  // namespace

int inspect_command(const std::string& plan_path, bool json, std::ostream& out, std::ostream& err) {
  // Only a regular file of at most kMaxPlanFileBytes is read (a FIFO would block for ever).
  auto bytes = read_regular_file(plan_path, "plan", kMaxPlanFileBytes);
  if (!bytes) {
    err << "error: " << bytes.error().message << "\n";
    return bytes.error().exit_code();
  }
  auto plan = load_plan_from_memory(bytes->data(), bytes->size(), plan_path);
  if (!plan) {
    err << "error: " << plan.error().message << "\n";
    return plan.error().exit_code();
  }
  bytes->clear();
  bytes->shrink_to_fit();
  ordered_json j = describe(**plan);
  // Names in a plan are bytes: one that is not UTF-8 is printed with U+FFFD in its place, never
  // allowed to stop the JSON writer.
  if (json)
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else
    print_text(j, out);
  return 0;
}

}  // namespace mm::rt
