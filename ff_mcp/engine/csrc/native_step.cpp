// The fused FF train step (engine/fused.py) as one compiled function, for fp32 on CPU.
//
// Python's fused step issues ~180 small torch ops a mini-batch (3x1000), each behind Python and
// dispatcher overhead, and reads every activity several times (sums of squares, goodness, loss
// gradient, upstream rows, the next layer's normalisation). Here each layer's post-matmul work is
// one pass to sum squares and one pass that writes the upstream rows and scales h for the layer
// above; the matmuls and the SGD update are the same kernels the Python step calls (oneDNN linear,
// addmm_/addmv_ into torch.optim.SGD's momentum buffers, torch's fused SGD). engine/native.py
// decides when this path applies and builds it; tests/engine/test_native_step.py checks it trains
// the same weights as the Python step.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <optional>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr double kEps = 1e-8;  // norms.py _EPS

at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                         c10::string_view attr) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::string_view, c10::List<std::optional<at::Scalar>>,
                                         std::optional<c10::string_view>)>();
  return op.call(x, w, b, attr, c10::List<std::optional<at::Scalar>>(), "");
}

// norms.py scale_from_sumsq: 0 rms, 1 l2, 2 none
inline float norm_scale(float sumsq, int64_t width, int64_t kind) {
  if (kind == 0) return 1.0f / std::sqrt(sumsq / static_cast<float>(width) + static_cast<float>(kEps));
  if (kind == 1) return 1.0f / (std::sqrt(sumsq) + 1e-4f);
  return 1.0f;
}

void row_sumsq(const float* data, int64_t rows, int64_t width, float* out) {
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = data + r * width;
      Vec acc(0.f);
      int64_t j = 0;
      for (; j + Vec::size() <= width; j += Vec::size()) {
        Vec v = Vec::loadu(x + j);
        acc = at::vec::fmadd(v, v, acc);
      }
      float s = at::vec::vec_reduce_all<float>([](Vec& p, Vec& q) { return p + q; }, acc);
      for (; j < width; ++j) s += x[j] * x[j];
      out[r] = s;
    }
  });
}

struct Tail {
  at::Tensor upstream;      // (n_train, H)
  std::vector<float> sumsq;  // (rows) of h, before any scaling
};

// Peer normalisation (loeweX): running = 0.9 running + 0.1 mean of the positive rows; the loss
// gains peer * mean((running - mean running)^2), and each positive row's upstream gains
// (2 / H)(running - mean running) * 0.1 / n_pos * peer, masked where ReLU is off unless full_grad.
struct Peer {
  double weight = 0.0;
  at::Tensor running_mean;
  bool full_grad = false;
};

// Goodness, softplus loss and its closed-form gradient, upstream rows (times in_scale[r] when given),
// then h scaled in place by out_norm's factor (when hand_off). Adds loss, summed positive and summed
// negative goodness to stats_row.
Tail tail(at::Tensor& h, int64_t n_pos, int64_t n_train, double a, double sign, double theta,
          const float* in_scale, bool hand_off, int64_t out_norm, float* stats_row, const Peer& peer) {
  const int64_t rows = h.size(0), width = h.size(1);
  float* hp = h.data_ptr<float>();
  Tail t{at::empty({n_train, width}, h.options()), std::vector<float>(rows)};
  row_sumsq(hp, rows, width, t.sumsq.data());
  at::Tensor peer_grad;
  double peer_loss = 0.0;
  if (peer.weight > 0.0) {
    auto running = peer.running_mean * 0.9 + h.narrow(0, 0, n_pos).mean(0) * 0.1;
    auto deviation = running - running.mean();
    peer_loss = peer.weight * deviation.square().mean().item<double>();
    peer.running_mean.copy_(running);
    peer_grad = deviation.mul_(peer.weight * 0.2 / (width * n_pos)).contiguous();
  }
  const float* pg = peer_grad.defined() ? peer_grad.data_ptr<float>() : nullptr;
  std::vector<float> coef(n_train), scale(rows, 1.0f);
  double loss = 0.0, g_pos = 0.0, g_neg = 0.0;
  for (int64_t r = 0; r < n_train; ++r) {
    const double measure = a * t.sumsq[r];
    const double logit = sign * (measure - theta);
    const double flipped = r < n_pos ? -logit : logit;  // softplus(-l) for positives, softplus(l) for negatives
    loss += flipped > 20.0 ? flipped : std::log1p(std::exp(flipped));
    const double grad = 1.0 / (1.0 + std::exp(-flipped)) / ((r < n_pos ? -1.0 : 1.0) * n_train);
    coef[r] = static_cast<float>(grad * 2.0 * sign * a) * (in_scale ? in_scale[r] : 1.0f);
    (r < n_pos ? g_pos : g_neg) += measure;
  }
  stats_row[0] += static_cast<float>(loss / n_train + peer_loss);
  stats_row[1] += static_cast<float>(g_pos);
  stats_row[2] += static_cast<float>(g_neg);
  if (hand_off)
    for (int64_t r = 0; r < rows; ++r) scale[r] = norm_scale(t.sumsq[r], width, out_norm);
  float* up = t.upstream.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* x = hp + r * width;
      const float s = scale[r];
      if (r < n_train) {
        const float c = coef[r];
        float* u = up + r * width;
        if (pg && r < n_pos) {  // the peer term, read from h before the hand-off scales it
          const float rs = in_scale ? in_scale[r] : 1.0f;
          for (int64_t j = 0; j < width; ++j) {
            const float v = x[j], mask = (peer.full_grad || v > 0.0f) ? rs : 0.0f;
            u[j] = v * c + mask * pg[j];
            if (hand_off) x[j] = v * s;
          }
        } else if (hand_off)
          for (int64_t j = 0; j < width; ++j) { const float v = x[j]; u[j] = v * c; x[j] = v * s; }
        else
          for (int64_t j = 0; j < width; ++j) u[j] = x[j] * c;
      } else if (hand_off) {
        for (int64_t j = 0; j < width; ++j) x[j] *= s;
      }
    }
  });
  return t;
}

void sgd(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& buffers, const std::vector<double>& hp) {
  // hp: lr, momentum, weight decay. The gradient is already in the buffers (momentum * buf + grad):
  // torch's fused SGD kernel in its first-step form finishes "buf += wd * w; w -= lr * buf".
  at::_fused_sgd_(params, buffers, buffers, hp[2], hp[1], hp[0], 0.0, false, false, true);
}

}  // namespace

// One mini-batch of the fused step. The first layer shares W.x between the label variants of each
// image (LabeledRows): base (B, D), labels (G*B,) with -1 for neutral rows. In fp32 every later layer
// gets its input rows already normalised by the layer below (oneDNN linear + bias + ReLU); with bf16
// (autocast's arithmetic: bf16 matmuls, fp32 everything else) each layer scales its matmul's output
// rows instead, as fused.py does. See engine/native.py for the arguments.
void train_step(const at::Tensor& base, const at::Tensor& labels, int64_t num_classes, double strength,
                const std::vector<at::Tensor>& weights, const std::vector<std::optional<at::Tensor>>& biases,
                const std::vector<at::Tensor>& buf_w, const std::vector<std::optional<at::Tensor>>& buf_b,
                const std::vector<double>& goodness_a, const std::vector<double>& goodness_sign,
                const std::vector<double>& thresholds, const std::vector<double>& peer_norm,
                const std::vector<std::optional<at::Tensor>>& running_means, const std::vector<bool>& full_grad,
                const std::vector<std::vector<double>>& sgd_hp,
                int64_t first_norm, int64_t norm, int64_t first_scored,
                const std::optional<at::Tensor>& readout_w, const std::optional<at::Tensor>& readout_buf,
                const at::Tensor& y, const std::vector<double>& readout_hp, const at::Tensor& stats, bool bf16) {
  at::NoGradGuard no_grad;
  const int64_t batch = base.size(0), rows = labels.size(0), n_pos = batch, n_train = 2 * batch;
  const int64_t k = num_classes, layers = static_cast<int64_t>(weights.size());
  // raw pointers below: check what they assume
  auto dense = [](const at::Tensor& t, at::ScalarType type) {
    return t.device().is_cpu() && t.scalar_type() == type && t.is_contiguous();
  };
  TORCH_CHECK(layers >= 1 && dense(base, at::kFloat) && base.dim() == 2, "native step: base must be (B, D) contiguous float32");
  TORCH_CHECK(dense(labels, at::kLong) && (rows == 2 * batch || rows == 3 * batch),
              "native step: labels must be 2B or 3B contiguous int64");
  TORCH_CHECK(dense(stats, at::kFloat) && stats.numel() == 3 * (layers + 1), "native step: stats must be (L + 1, 3) float32");
  const int64_t* lab = labels.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    TORCH_CHECK(lab[r] >= (r < n_train ? 0 : -1) && lab[r] < k, "native step: label ", lab[r], " of row ", r,
                " is outside [0, ", k, ")");
  for (int64_t i = 0; i < layers; ++i) {
    TORCH_CHECK(dense(weights[i], at::kFloat) && dense(buf_w[i], at::kFloat), "native step: layer ", i,
                " weight and momentum buffer must be contiguous float32");
    TORCH_CHECK(!biases[i] || (dense(*biases[i], at::kFloat) && buf_b[i] && dense(*buf_b[i], at::kFloat)),
                "native step: layer ", i, " bias and momentum buffer must be contiguous float32");
  }
  const bool readout = readout_w.has_value();
  float* st = stats.data_ptr<float>();
  std::vector<at::Tensor> features;
  at::Tensor z;  // the rows the current layer reads: normalised in fp32, raw in bf16 (then z_sumsq)
  std::vector<float> z_sumsq;

  // a @ b, in bf16 returned as fp32 (fused._mm)
  auto matmul = [&](const at::Tensor& a, const at::Tensor& b) {
    return bf16 ? at::matmul(a.to(at::kBFloat16), b.to(at::kBFloat16)).to(at::kFloat) : at::mm(a, b);
  };
  // t = momentum * t + a @ b (fused._accumulate_low in bf16: the product in bf16, read into fp32 t)
  auto accumulate = [&](const at::Tensor& t, const at::Tensor& a, const at::Tensor& b, double momentum) {
    if (!bf16) {
      const_cast<at::Tensor&>(t).addmm_(a, b, momentum, 1.0);
      return;
    }
    auto grad = at::matmul(a.to(at::kBFloat16), b.to(at::kBFloat16));
    if (momentum == 1.0)
      const_cast<at::Tensor&>(t).add_(grad);
    else
      at::add_out(const_cast<at::Tensor&>(t), grad, t, momentum);  // grad + momentum * t in one pass
  };
  // the readout's features: a layer's neutral rows, scaled by the network's norm
  auto neutral_features = [&](const at::Tensor& h, const std::vector<float>& sumsq) {
    const int64_t width = h.size(1);
    std::vector<float> fs(rows - n_train);
    for (int64_t r = n_train; r < rows; ++r) fs[r - n_train] = norm_scale(sumsq[r], width, norm);
    return h.narrow(0, n_train, rows - n_train) * at::from_blob(fs.data(), {rows - n_train, 1}, h.options());
  };
  // h = relu(bias + pre * scale[r]) in place
  auto bias_scale_relu = [&](at::Tensor& pre, const std::optional<at::Tensor>& bias, const float* scale) {
    const int64_t width = pre.size(1);
    const float* bp = bias ? bias->data_ptr<float>() : nullptr;
    float* hp = pre.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* out = hp + r * width;
        const float s = scale[r];
        for (int64_t j = 0; j < width; ++j) {
          const float v = (bp ? bp[j] : 0.0f) + out[j] * s;
          out[j] = v > 0.0f ? v : 0.0f;
        }
      }
    });
  };
  auto bias_grad = [&](int64_t i, const at::Tensor& up, const float* scale, std::vector<at::Tensor>& params,
                       std::vector<at::Tensor>& buffers) {
    if (!biases[i]) return;
    auto inv_scale = scale ? at::from_blob(const_cast<float*>(scale), {n_train}, up.options()).reciprocal()
                           : at::ones({n_train}, up.options());
    buf_b[i]->addmv_(up.t(), inv_scale, sgd_hp[i][1], 1.0);
    params.push_back(*biases[i]);
    buffers.push_back(*buf_b[i]);
  };

  // ---- the shared first layer
  {
    const at::Tensor& w = weights[0];
    const int64_t width_in = w.size(1), width = w.size(0);
    std::vector<float> base_sumsq(batch), scale(rows);
    row_sumsq(base.data_ptr<float>(), batch, base.size(1), base_sumsq.data());
    const float s2 = static_cast<float>(strength * strength);
    for (int64_t r = 0; r < rows; ++r) {
      const float code = lab[r] < 0 ? s2 / static_cast<float>(k) : s2;
      scale[r] = norm_scale(code + base_sumsq[r % batch], width_in, first_norm);
    }
    auto label_w = w.narrow(1, 0, k).t();  // (K, H)
    auto table = at::cat({label_w * strength, label_w.mean(0, true) * strength});  // (K + 1, H)
    auto image = bf16 ? matmul(base, w.t()) : onednn_linear(base, w, std::nullopt, "none");  // (B, H), W.x once
    auto h = at::empty({rows, width}, image.options());
    const float* tp = table.data_ptr<float>();
    const float* ip = image.data_ptr<float>();
    const float* bp = biases[0] ? biases[0]->data_ptr<float>() : nullptr;
    float* hp = h.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* code = tp + (lab[r] < 0 ? k : lab[r]) * width;
        const float* img = ip + (r % batch) * width;
        float* out = hp + r * width;
        const float s = scale[r];
        for (int64_t j = 0; j < width; ++j) {
          const float pre = (code[j] + img[j]) * s + (bp ? bp[j] : 0.0f);
          out[j] = pre > 0.0f ? pre : 0.0f;
        }
      }
    });
    const bool hand_off = layers > 1 && !bf16;
    Peer peer{peer_norm[0], running_means[0] ? *running_means[0] : at::Tensor(), full_grad[0]};
    Tail t = tail(h, n_pos, n_train, goodness_a[0], goodness_sign[0], thresholds[0], scale.data(), hand_off, norm, st,
                  peer);
    auto up = t.upstream;
    auto image_part = up.narrow(0, 0, batch) + up.narrow(0, batch, batch);  // positives and negatives share images
    auto label_grad = at::zeros({k, width}, up.options()).index_add_(0, labels.narrow(0, 0, n_train), up);
    accumulate(buf_w[0], image_part.t(), base, sgd_hp[0][1]);
    buf_w[0].narrow(1, 0, k).add_(label_grad.t(), strength);
    std::vector<at::Tensor> params{w}, buffers{buf_w[0]};
    bias_grad(0, up, scale.data(), params, buffers);
    sgd(params, buffers, sgd_hp[0]);
    if (readout && first_scored == 0)  // after a hand-off its rows are scaled in place already
      features.push_back(hand_off ? h.narrow(0, n_train, rows - n_train) : neutral_features(h, t.sumsq));
    z = h;
    z_sumsq = std::move(t.sumsq);
  }

  // ---- later layers
  for (int64_t i = 1; i < layers; ++i) {
    const at::Tensor& w = weights[i];
    const bool last = i + 1 == layers, hand_off = !last && !bf16;
    at::Tensor h;
    std::vector<float> scale;
    if (bf16) {  // bf16 matmul of the raw rows, then their scale, the bias and ReLU
      scale.resize(rows);
      for (int64_t r = 0; r < rows; ++r) scale[r] = norm_scale(z_sumsq[r], z.size(1), norm);
      h = matmul(z, w.t());
      bias_scale_relu(h, biases[i], scale.data());
    } else {  // oneDNN linear + bias + ReLU on rows the layer below scaled
      h = onednn_linear(z, w, biases[i], "relu");
    }
    const float* in_scale = bf16 ? scale.data() : nullptr;
    Peer peer{peer_norm[i], running_means[i] ? *running_means[i] : at::Tensor(), full_grad[i]};
    Tail t = tail(h, n_pos, n_train, goodness_a[i], goodness_sign[i], thresholds[i], in_scale, hand_off, norm,
                  st + 3 * i, peer);
    accumulate(buf_w[i], t.upstream.t(), z.narrow(0, 0, n_train), sgd_hp[i][1]);
    std::vector<at::Tensor> params{w}, buffers{buf_w[i]};
    bias_grad(i, t.upstream, in_scale, params, buffers);
    sgd(params, buffers, sgd_hp[i]);
    if (readout && i >= first_scored)
      features.push_back(hand_off ? h.narrow(0, n_train, rows - n_train) : neutral_features(h, t.sumsq));
    z = h;
    z_sumsq = std::move(t.sumsq);
  }

  // ---- the linear softmax readout on the neutral rows' features (fp32): dCE/dlogits = (softmax - onehot) / B
  if (readout) {
    auto feats = at::cat(features, 1);
    auto logits = onednn_linear(feats, *readout_w, std::nullopt, "none");
    auto log_p = at::log_softmax(logits, 1);
    auto picked = log_p.gather(1, y.unsqueeze(1));
    st[3 * layers] += -picked.mean().item<float>();
    auto dlogits = log_p.exp_();
    dlogits.scatter_add_(1, y.unsqueeze(1), at::full({batch, 1}, -1.0f, dlogits.options()));
    dlogits.div_(static_cast<double>(batch));
    readout_buf->addmm_(dlogits.t(), feats, readout_hp[1], 1.0);
    sgd({*readout_w}, {*readout_buf}, readout_hp);
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("train_step", &train_step, "One fused FF training step (fp32 or bf16 matmuls, CPU), see ff_mcp/engine/native.py");
}
