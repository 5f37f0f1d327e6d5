"""dim_torch.py - dimd's default job written in PyTorch, the peer of `make bench-peers`.

The same networks, losses and optimisers as core/dim (model.c, minet.c, estimator.c,
trainer.c; /work/shared/docs/dim-algorithm.md), so that a training step and a forward
pass do the same arithmetic on both sides:

- encoder basic32x32 on 1x32x32 inputs: conv4x4 s2 p1 64, 128, 256 (no bias, BN, ReLU);
  linear 4096 -> 1024 (no bias, BN, ReLU); linear 1024 -> 64 (bias) = Y. The local map
  is the output of the second block (128 x 8 x 8).
- MI nets (local: 128 -> D on each of the 64 locations; global: 64 -> D on Y), per
  location as 1x1 convolutions, written as linear layers on rows (B*64, 128):
  LayerNorm(D)(linear(D, bias)(ReLU(BN(linear(D, no bias)(x)))) + linear(D, no bias)(x)),
  the shortcut initialised near identity.
- scores u = g l^T (B x B*64), JSD over all pairs: positives i == j, negatives every
  location of every other image; loss = mean_P sp(-u) + mean_Q sp(u), weight beta 1.
- prior discriminator 64 -> 1000 -> 200 -> 1 (ReLU) on sigmoid(Y); the encoder's term
  gamma * mean sp(-D(sigmoid(Y))) (gamma 0.1); D's own update on [z ~ U[0,1]; sigmoid(Y)
  detached] with its own Adam.
- Adam lr 1e-4, betas (0.5, 0.999), eps 1e-8; BN momentum 0.1, eps 1e-5; LN eps 1e-5.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_block(ic, oc):
    return [nn.Conv2d(ic, oc, 4, 2, 1, bias=False), nn.BatchNorm2d(oc), nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    """basic32x32: returns (local map, Y) in training, Y alone from forward_y."""

    def __init__(self, in_c=1, y_dim=64):
        super().__init__()
        self.local = nn.Sequential(*conv_block(in_c, 64), *conv_block(64, 128))
        self.rest = nn.Sequential(*conv_block(128, 256), nn.Flatten(),
                                  nn.Linear(256 * 4 * 4, 1024, bias=False), nn.BatchNorm1d(1024),
                                  nn.ReLU(inplace=True), nn.Linear(1024, y_dim))

    def forward(self, x):
        m = self.local(x)
        return m, self.rest(m)

    def forward_y(self, x):
        return self.rest(self.local(x))


class YOnly(nn.Module):
    """The encoder as inference sees it: image in, Y out (for tracing)."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, x):
        return self.enc.forward_y(x)


class MINet(nn.Module):
    def __init__(self, cin, D):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(cin, D, bias=False), nn.BatchNorm1d(D),
                               nn.ReLU(inplace=True), nn.Linear(D, D))
        self.s = nn.Linear(cin, D, bias=False)
        self.ln = nn.LayerNorm(D)
        with torch.no_grad():  # near identity, as dim_minet_init_params
            w = torch.empty(D, cin).uniform_(-0.01, 0.01)
            k = min(D, cin)
            w[torch.arange(k), torch.arange(k)] = 1.0
            self.s.weight.copy_(w)

    def forward(self, x):
        return self.ln(self.a(x) + self.s(x))


class Prior(nn.Module):
    def __init__(self, y_dim=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(y_dim, 1000), nn.ReLU(inplace=True),
                                 nn.Linear(1000, 200), nn.ReLU(inplace=True), nn.Linear(200, 1))

    def forward(self, s):
        return self.net(s).squeeze(1)


def jsd_all_pairs(u, B, L):
    """u (B, B*L): mean over positives (i == j) of sp(-u) + mean over negatives of sp(u)."""
    u3 = u.view(B, B, L)
    eye = torch.eye(B, dtype=torch.bool).unsqueeze(2).expand(B, B, L)
    pos = u3[eye]
    neg_sum = F.softplus(u3).sum() - F.softplus(pos).sum()
    return F.softplus(-pos).mean() + neg_sum / (B * (B - 1) * L)


class DIM(nn.Module):
    """Encoder and MI nets: the parameters of dimd's main slab (one Adam)."""

    def __init__(self, in_c=1, y_dim=64, D=512):
        super().__init__()
        self.enc = Encoder(in_c, y_dim)
        self.lmi = MINet(128, D)
        self.gmi = MINet(y_dim, D)
        self.D = D


class Trainer:
    """One DIM(L) JSD + prior step, as dim_trainer_step (alpha 0, beta 1, gamma 0.1)."""

    def __init__(self, images, batch=64, D=512, beta=1.0, gamma=0.1, lr=1e-4, seed=1):
        torch.manual_seed(seed)
        self.images = images  # uint8 (N, 1, 28, 28)
        self.B, self.beta, self.gamma = batch, beta, gamma
        self.model = DIM(images.shape[1], 64, D)
        self.prior = Prior(64)
        adam = dict(lr=lr, betas=(0.5, 0.999), eps=1e-8)
        self.opt = torch.optim.Adam(self.model.parameters(), **adam)
        self.opt_prior = torch.optim.Adam(self.prior.parameters(), **adam)
        self.perm, self.pos = torch.randperm(images.shape[0]), 0
        self.model.train()
        self.prior.train()

    def batch(self):
        """The next B images in a shuffled order, to [-1, 1], zero-padded to 32x32."""
        if self.pos + self.B > self.perm.numel():
            self.perm, self.pos = torch.randperm(self.images.shape[0]), 0
        idx = self.perm[self.pos:self.pos + self.B]
        self.pos += self.B
        return to_input(self.images[idx])

    def step(self):
        x = self.batch()
        B, D = self.B, self.model.D
        m = self.model
        self.opt.zero_grad(set_to_none=True)
        local, y = m.enc(x)
        L = local.shape[2] * local.shape[3]
        rows = local.permute(0, 2, 3, 1).reshape(B * L, local.shape[1])
        l = m.lmi(rows)  # (B*L, D)
        g = m.gmi(y)  # (B, D)
        u = g @ l.t()  # (B, B*L): u[i][j*L + q]
        loss_local = jsd_all_pairs(u, B, L)
        s = torch.sigmoid(y)
        loss_prior = F.softplus(-self.prior(s)).mean()
        total = self.beta * loss_local + self.gamma * loss_prior
        total.backward()
        # the discriminator's own update (its gradients from the encoder's term are dropped)
        self.opt_prior.zero_grad(set_to_none=True)
        z = torch.rand(B, y.shape[1])
        d = self.prior(torch.cat([z, s.detach()]))
        loss_d = F.softplus(-d[:B]).mean() + F.softplus(d[B:]).mean()
        loss_d.backward()
        self.opt.step()
        self.opt_prior.step()
        return float(total)


def to_input(u8):
    """uint8 (B, C, 28, 28) -> float (B, C, 32, 32) in [-1, 1]: zero-padded in pixel
    values, then v / 127.5 - 1, as dim_image_to_input pads Fashion-MNIST for basic32x32."""
    x = F.pad(u8.float(), (2, 2, 2, 2))
    return x.div_(127.5).sub_(1.0)


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def step_flops(trainer):
    """FLOPs of the matrix products one step runs, counted from the modules that run
    (forward hooks on every Conv2d and Linear during one step) as dim_trainer_step_flops
    counts dimd's: 2 per multiply-accumulate; forward, weight gradient and input
    gradient, except the encoder's first layer (its input is the image) and the
    discriminator's first layer in its own update; plus the score product and its two
    gradients (3 B^2 L D)."""
    macs = []
    first = {trainer.model.enc.local[0], trainer.prior.net[0]}

    def hook(mod, inp, out):
        x = inp[0]
        if isinstance(mod, nn.Conv2d):
            per = out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            per = out.numel() * mod.in_features
        need_din = not (mod in first and not x.requires_grad)
        macs.append(per * (3 if need_din else 2))

    hs = [mod.register_forward_hook(hook)
          for mod in list(trainer.model.modules()) + list(trainer.prior.modules())
          if isinstance(mod, (nn.Conv2d, nn.Linear))]
    try:
        trainer.step()
    finally:
        for h in hs:
            h.remove()
    B, L, D = trainer.B, 64, trainer.model.D
    return 2.0 * (sum(macs) + 3 * B * B * L * D)


def forward_flops(enc):
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            macs.append(out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1])
        else:
            macs.append(out.numel() * mod.in_features)

    hs = [m.register_forward_hook(hook) for m in enc.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    was = enc.training
    enc.eval()
    with torch.no_grad():
        enc.forward_y(torch.zeros(1, 1, 32, 32))
    enc.train(was)
    for h in hs:
        h.remove()
    return 2.0 * sum(macs)
