"""AASIST (Jung et al., ICASSP 2022): raw-waveform anti-spoofing with spectro-temporal graph attention.

A re-implementation of clovaai/aasist ``models/AASIST.py`` (MIT, NAVER Corp., commit
a04c986) behind the `DetectorNet` contract. Submodule and parameter names are the
published ones (``encoder.0.0.conv1.weight``, ``GAT_layer_S.att_weight``, ``out_layer.*``,
...), so clovaai's ASVspoof 2019 LA checkpoint loads with ``strict=True``; the standard
configuration has exactly 297,866 parameters, as published.

Pipeline: fixed mel-spaced sinc band-pass filters (``conv_time``, not learnt) -> |.| and
3x3 max-pool -> six residual blocks (a 2-D CNN over filter x time) -> two graphs, one
with a node per sub-band (max over time, plus a learnt positional embedding) and one
with a node per frame (max over sub-bands), each refined by graph attention and pruned
by graph pooling -> two branches of heterogeneous stacked graph attention over both
node types plus a master node -> element-wise max of the branches -> a 160-d readout
(max|.| and mean of the temporal and spectral nodes, and the master node) -> ``out_layer``.

Conventions that callers must know:

* ``out_layer`` has clovaai's two classes: index 0 = spoof, index 1 = bona fide (their
  labels are 1 for bona fide, and their score is ``out[:, 1]``). Our contract wants one
  logit that is > 0 for synthetic, so ``spoof = out[:, 0] - out[:, 1]``, the log-odds of
  spoof under the two-way softmax; there is no ``spoof_head``.
* Input is raw 16 kHz audio in [-1, 1], not normalised. The published model was trained
  and evaluated on 64,600-sample crops (short clips tiled to that length); the net
  itself accepts any length of at least `AASIST.min_samples` (2,315 by default): the
  graphs get more or fewer temporal nodes.
* Published quirk kept on purpose: in each residual block but the first, clovaai's code
  computes ``bn1`` + SELU and then discards it (``conv1`` reads the block input). The
  checkpoint was trained that way, so ``bn1`` is kept (its parameters are in the
  checkpoint and in the 297,866) but not applied; it never receives a gradient.
* ``pool_ratios[3]`` and ``temperatures[3]`` are in the published config but unused by
  the published model (all four stacked layers use index 2); they are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.detector_nets import DetectorLogits, DetectorNet, register_arch
from models.weights import require_weights

PUBLISHED_WEIGHTS = "aasist-asvspoof2019-la"  # name in models/weights.json
PUBLISHED_CHECKPOINT = "AASIST.pth"
PUBLISHED_WINDOW = 64_600  # samples at 16 kHz (clovaai's nb_samp): the crop length it was trained on
BONA_FIDE_INDEX, SPOOF_INDEX = 1, 0  # out_layer classes, clovaai's convention

_DEFAULT_FILTS: tuple[int | tuple[int, int], ...] = (70, (1, 32), (32, 32), (32, 64), (64, 64))
_POOL_FACTOR = 3  # the front end's 3x3 max-pool and each residual block's 1x3 max-pool


def _xavier(*size: int) -> nn.Parameter:
    """An attention weight vector, initialised as clovaai does (Xavier normal)."""
    w = nn.Parameter(torch.empty(*size))
    nn.init.xavier_normal_(w)
    return w


def _batch_norm_nodes(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm1d over every node of every graph in the batch: [B, N, D] -> [B, N, D]."""
    return bn(x.reshape(-1, x.size(-1))).view_as(x)


def _pairwise_products(x: Tensor) -> Tensor:
    """[B, N, D] -> [B, N, N, D] with entry (i, j) = x_i * x_j: the input of the attention scores."""
    return x.unsqueeze(2) * x.unsqueeze(1)


# ---------------------------------------------------------------------------- front end


def _to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_band_pass_filters(n_filters: int, kernel_size: int, sample_rate: int) -> Tensor:
    """[n_filters, kernel_size] Hamming-windowed ideal band-pass filters, bands equally spaced in mel.

    The band edges split 0 .. Nyquist into ``n_filters`` equal mel intervals; each
    filter is the difference of two windowed sinc low-passes (RawNet2 / AASIST front end).
    """
    edges = _to_hz(np.linspace(0.0, _to_mel(np.array(sample_rate // 2, dtype=np.float64)), n_filters + 1))
    taps = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2

    def low_pass(cutoff: np.ndarray) -> np.ndarray:
        c = 2.0 * cutoff[:, None] / sample_rate
        return c * np.sinc(c * taps[None, :])

    ideal = low_pass(edges[1:]) - low_pass(edges[:-1])
    return torch.from_numpy(np.hamming(kernel_size)[None, :] * ideal).float()


class SincFrontEnd(nn.Module):
    """Fixed sinc filterbank (``conv_time`` in clovaai's code): raw wave [B, T] -> sub-band signals [B, F, T'].

    The filters are a non-persistent buffer: they are not learnt and not in the
    checkpoint, and `.to(device)` moves them. ``freq_mask`` zeroes a random run of
    0-19 adjacent filters for the whole batch, clovaai's optional training augmentation.
    """

    band_pass: Tensor

    def __init__(self, n_filters: int, kernel_size: int, sample_rate: int) -> None:
        super().__init__()
        kernel_size += 1 - kernel_size % 2  # odd length, so each filter is symmetric (zero phase)
        self.n_filters, self.kernel_size = n_filters, kernel_size
        self.register_buffer("band_pass", sinc_band_pass_filters(n_filters, kernel_size, sample_rate),
                             persistent=False)

    def forward(self, wave: Tensor, freq_mask: bool = False) -> Tensor:
        filters = self.band_pass
        if freq_mask:
            width = int(torch.randint(0, 20, ()).item())
            start = int(torch.randint(0, self.n_filters - width + 1, ()).item())
            filters = filters.clone()
            filters[start:start + width] = 0.0
        return F.conv1d(wave.unsqueeze(1), filters.unsqueeze(1))


class ResidualBlock(nn.Module):
    """clovaai's ``Residual_block``: two (2x3) convs with BN + SELU between, a skip, then a (1x3) max-pool.

    The frequency axis keeps its size (conv1 pads one row, conv2 removes one); time
    shrinks 3x. ``bn1`` exists (published checkpoint key) but is not applied: see the
    module docstring.
    """

    def __init__(self, c_in: int, c_out: int, first: bool = False) -> None:
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1)) if c_in != c_out else None
        self.mp = nn.MaxPool2d((1, _POOL_FACTOR))

    def forward(self, x: Tensor) -> Tensor:
        # in place where autograd allows: at 4-s windows the first block's tensors are 65 MB per window
        out = self.conv2(F.selu(self.bn2(self.conv1(x)), inplace=True))
        out += self.conv_downsample(x) if self.conv_downsample is not None else x
        return self.mp(out)


# ---------------------------------------------------------------------------- graph layers


class GraphAttentionLayer(nn.Module):
    """Graph attention over a fully connected graph of N nodes: [B, N, in_dim] -> [B, N, out_dim].

    Scores for the edge (i, j) come from the element-wise product x_i * x_j through a
    tanh projection and a weight vector, sharpened or flattened by ``temperature``,
    softmax-normalised over j. The output adds the attention-aggregated and the plain
    projection of each node, then BN (over all nodes) and SELU.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_drop(x)
        scores = (torch.tanh(self.att_proj(_pairwise_products(x))) @ self.att_weight).squeeze(-1)
        att = torch.softmax(scores / self.temp, dim=-1)  # [B, N, N]
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_batch_norm_nodes(self.bn, x))


class HtrgGraphAttentionLayer(nn.Module):
    """Heterogeneous graph attention over two node types (temporal, spectral) plus a master node.

    Both node sets are first projected into one space; edge scores use a separate
    weight vector per pair of types (type1-type1, type2-type2, and one shared by the
    two cross directions). The master node attends to every node, but no node attends
    to it: it summarises the whole graph. Returns the updated (type1, type2, master).
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _xavier(out_dim, 1)
        self.att_weight22 = _xavier(out_dim, 1)
        self.att_weight12 = _xavier(out_dim, 1)
        self.att_weightM = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x1 [B, N1, D], x2 [B, N2, D], master [B or 1, 1, D] -> the three, in out_dim."""
        n1, n2 = x1.size(1), x2.size(1)
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))
        master = self._update_master(x, master)
        att = self._attention(x, n1)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        x = F.selu(_batch_norm_nodes(self.bn, x))
        return x.narrow(1, 0, n1), x.narrow(1, n1, n2), master

    def _attention(self, x: Tensor, n1: int) -> Tensor:
        """[B, N, N] edge weights, each edge scored with the weight vector of its pair of node types."""
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))  # [B, N, N, out_dim]
        weights = torch.cat([self.att_weight11, self.att_weight12, self.att_weight22], dim=1)
        scores = hidden @ weights  # [B, N, N, 3]: one score per weight vector
        is_type2 = (torch.arange(x.size(1), device=x.device) >= n1).long()
        pair_type = (is_type2[:, None] + is_type2[None, :]).expand(*scores.shape[:-1]).unsqueeze(-1)
        scores = scores.gather(-1, pair_type).squeeze(-1)  # 0: 1-1, 1: 1-2 or 2-1, 2: 2-2
        return torch.softmax(scores / self.temp, dim=-1)

    def _update_master(self, x: Tensor, master: Tensor) -> Tensor:
        """The master node attends to all nodes: [B, N, D], [B or 1, 1, D] -> [B, 1, out_dim]."""
        scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # [B, N, 1]
        att = torch.softmax(scores / self.temp, dim=1)
        return self.proj_with_attM(att.transpose(1, 2) @ x) + self.proj_without_attM(master)


class GraphPool(nn.Module):
    """Keep the top ``ratio`` of nodes by a learnt sigmoid score, each scaled by its score (graph U-Net pooling)."""

    def __init__(self, ratio: float, in_dim: int, p: float = 0.3) -> None:
        super().__init__()
        self.k = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop: nn.Module = nn.Dropout(p) if p > 0 else nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))  # [B, N, 1]
        n_keep = max(int(h.size(1) * self.k), 1)
        idx = torch.topk(scores, n_keep, dim=1).indices.expand(-1, -1, h.size(2))
        return torch.gather(h * scores, 1, idx)


# ---------------------------------------------------------------------------- the net


def _encoder_channels(filts: Sequence[int | Sequence[int]]) -> tuple[int, list[tuple[int, int]]]:
    """clovaai's ``filts`` ([n_sinc, [c_in, c_out] x 4]) -> (n_sinc, the six blocks' (c_in, c_out))."""
    n_sinc, *pairs = filts
    if not isinstance(n_sinc, int) or len(pairs) != 4:
        raise ValueError(f"filts must be [n_sinc_filters, [c_in, c_out] x 4]; got {filts!r}")
    channels: list[tuple[int, int]] = []
    for pair in pairs:
        if isinstance(pair, int) or len(pair) != 2:
            raise ValueError(f"filts entries after the first must be [c_in, c_out]; got {pair!r}")
        channels.append((int(pair[0]), int(pair[1])))
    return n_sinc, channels + [channels[-1]] * 2  # the last block configuration is used three times


@register_arch("aasist")
class AASIST(DetectorNet):
    """AASIST behind the `DetectorNet` contract; defaults are clovaai's ``config/AASIST.conf``.

    ``embed`` is the published 160-d readout; ``forward`` applies the readout dropout
    (``dropout``, 0.5 as published), then ``out_layer`` (2 classes, kept so the
    checkpoint loads) for ``spoof = out[:, 0] - out[:, 1]``, and, when
    ``n_families > 0``, a ``family_head`` on the same readout (not in the checkpoint).
    """

    def __init__(
        self,
        n_families: int = 0,
        dropout: float = 0.5,
        first_conv: int = 128,
        filts: Sequence[int | Sequence[int]] = _DEFAULT_FILTS,
        gat_dims: Sequence[int] = (64, 32),
        pool_ratios: Sequence[float] = (0.5, 0.7, 0.5, 0.5),
        temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0),
        sample_rate: int = 16000,
        freq_aug: bool = False,
    ) -> None:
        n_sinc, blocks = _encoder_channels(filts)
        g0, g1 = (int(d) for d in gat_dims)
        super().__init__(5 * g1, n_families, dropout)  # dropout and family_head act on the 5*g1 readout
        del self.spoof_head  # replaced by out_layer's two published classes (see forward)
        self.freq_aug = freq_aug
        self.conv_time = SincFrontEnd(n_sinc, first_conv, sample_rate)
        self.first_bn = nn.BatchNorm2d(1)
        self.drop_way = nn.Dropout(0.2)
        self.encoder = nn.Sequential(
            *(nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0)) for i, (c_in, c_out) in enumerate(blocks))
        )
        c_last = blocks[-1][1]
        self.pos_S = nn.Parameter(torch.randn(1, n_sinc // _POOL_FACTOR, c_last))  # one per spectral node
        self.master1 = nn.Parameter(torch.randn(1, 1, g0))
        self.master2 = nn.Parameter(torch.randn(1, 1, g0))
        self.GAT_layer_S = GraphAttentionLayer(c_last, g0, temperature=temperatures[0])
        self.GAT_layer_T = GraphAttentionLayer(c_last, g0, temperature=temperatures[1])
        self.HtrgGAT_layer_ST11 = HtrgGraphAttentionLayer(g0, g1, temperature=temperatures[2])
        self.HtrgGAT_layer_ST12 = HtrgGraphAttentionLayer(g1, g1, temperature=temperatures[2])
        self.HtrgGAT_layer_ST21 = HtrgGraphAttentionLayer(g0, g1, temperature=temperatures[2])
        self.HtrgGAT_layer_ST22 = HtrgGraphAttentionLayer(g1, g1, temperature=temperatures[2])
        self.pool_S = GraphPool(pool_ratios[0], g0)
        self.pool_T = GraphPool(pool_ratios[1], g0)
        self.pool_hS1 = GraphPool(pool_ratios[2], g1)
        self.pool_hT1 = GraphPool(pool_ratios[2], g1)
        self.pool_hS2 = GraphPool(pool_ratios[2], g1)
        self.pool_hT2 = GraphPool(pool_ratios[2], g1)
        self.out_layer = nn.Linear(5 * g1, 2)

    @property
    def min_samples(self) -> int:
        """Shortest input: the temporal axis must survive the sinc conv and 1 + len(encoder) 3x max-pools."""
        return _POOL_FACTOR ** (1 + len(self.encoder)) + self.conv_time.kernel_size - 1

    def features(self, wave: Tensor) -> Tensor:
        """[B, T] -> [B, C, F, T'] encoder output (F = n_sinc // 3 sub-bands, T' = (T - 128) // 3**7 frames)."""
        if wave.dim() != 2 or wave.size(1) < self.min_samples:
            raise ValueError(f"AASIST expects [batch, samples] with >= {self.min_samples} samples; "
                             f"got {tuple(wave.shape)}")
        x = self.conv_time(wave, freq_mask=self.freq_aug and self.training).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (_POOL_FACTOR, _POOL_FACTOR))), inplace=True)
        return self.encoder(x)

    def embed(self, wave: Tensor) -> Tensor:
        e = self.features(wave).abs()
        out_S = self.pool_S(self.GAT_layer_S(e.amax(dim=3).transpose(1, 2) + self.pos_S))  # spectral graph
        out_T = self.pool_T(self.GAT_layer_T(e.amax(dim=2).transpose(1, 2)))  # temporal graph
        t1, s1, m1 = self._stacked_branch(out_T, out_S, self.master1, 1)
        t2, s2, m2 = self._stacked_branch(out_T, out_S, self.master2, 2)
        out_T, out_S, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        return torch.cat([out_T.abs().amax(dim=1), out_T.mean(dim=1),
                          out_S.abs().amax(dim=1), out_S.mean(dim=1), master.squeeze(1)], dim=1)

    def _stacked_branch(self, out_T: Tensor, out_S: Tensor, master: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """One of the two HS-GAL branches: HS-GAL, graph pooling, a second HS-GAL added residually, drop-way."""
        first: HtrgGraphAttentionLayer = getattr(self, f"HtrgGAT_layer_ST{k}1")
        second: HtrgGraphAttentionLayer = getattr(self, f"HtrgGAT_layer_ST{k}2")
        t, s, m = first(out_T, out_S, master)
        s, t = getattr(self, f"pool_hS{k}")(s), getattr(self, f"pool_hT{k}")(t)
        t_aug, s_aug, m_aug = second(t, s, m)
        return self.drop_way(t + t_aug), self.drop_way(s + s_aug), self.drop_way(m + m_aug)

    def class_logits(self, wave: Tensor) -> Tensor:
        """clovaai's two-class output [B, 2] (index 1 = bona fide; their score is ``[:, 1]``)."""
        return self.out_layer(self.dropout(self.embed(wave)))

    def heads(self, embedding: Tensor) -> DetectorLogits:
        hidden = self.dropout(embedding)
        out = self.out_layer(hidden)
        family = self.family_head(hidden) if self.family_head is not None else None
        return DetectorLogits(out[:, SPOOF_INDEX] - out[:, BONA_FIDE_INDEX], family)




# ---------------------------------------------------------------------------- published weights


_CONFIG_KEYS = ("first_conv", "filts", "gat_dims", "pool_ratios", "temperatures")


def kwargs_from_config(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """clovaai's ``model_config`` (AASIST_config.json) -> `AASIST` keyword arguments.

    ``nb_samp`` (the training crop length, see `PUBLISHED_WINDOW`) is a data setting,
    not a net one, and is dropped; the defaults of `AASIST` are the published values.
    """
    if model_config.get("architecture", "AASIST") != "AASIST":
        raise ValueError(f"not an AASIST config: architecture {model_config['architecture']!r}")
    return {k: model_config[k] for k in _CONFIG_KEYS if k in model_config}


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's parameters do not match the net's (other than an absent family head)."""


def published_checkpoint_path() -> Path:
    """clovaai's AASIST.pth as fetched by `trackguard setup models`, sha256-verified; never downloads.

    Raises `models.weights.MissingWeightsError` (with the setup command) when it is absent or altered.
    """
    return require_weights(PUBLISHED_WEIGHTS) / PUBLISHED_CHECKPOINT


def load_published_checkpoint(net: AASIST, path: Path) -> None:
    """Load clovaai's state dict into ``net``: every published key, with the same shapes, and nothing else.

    The only tolerated difference is our ``family_head`` (absent from the checkpoint,
    left as initialised); a missing, unexpected or mis-shaped key raises
    `CheckpointMismatchError` listing them all.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: expected a state dict, got {type(state).__name__}")
    own = net.state_dict()
    ours_only = {k for k in own if k.startswith("family_head.")}
    problems = [f"missing: {k}" for k in own if k not in state and k not in ours_only]
    problems += [f"unexpected: {k}" for k in state if k not in own or k in ours_only]
    problems += [f"shape of {k}: checkpoint {tuple(v.shape)}, net {tuple(own[k].shape)}"
                 for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems)} in all)" if len(problems) > 10 else "")
        raise CheckpointMismatchError(f"{path} does not fit this AASIST: {shown}")
    result = net.load_state_dict(state, strict=not ours_only)
    if set(result.missing_keys) != ours_only or result.unexpected_keys:  # cannot happen after the checks above
        raise CheckpointMismatchError(f"{path}: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
