"""A plain single-file JAX PPO on CartPole-v1: the peer of ``python train.py --algo ppo`` in
``benchmarks/startup_ratio.py``.

Written here in PureJaxRL's shape (one ``make_train(config) -> train(rng)`` closure, the whole
run one jitted program) with PureJaxRL's CartPole settings: 4 envs x 128 steps, 4 epochs x 4
minibatches, Adam 2.5e-4 annealed, clip 0.2, GAE 0.95, gamma 0.99, ent 0.01, vf 0.5, grad clip
0.5, 64-64 tanh actor and critic. No files, no logging: what a minimal script costs end to end.

    python -m benchmarks.plain_ppo_cartpole --total-timesteps 500000
"""

from __future__ import annotations

import argparse
import time

T0 = time.perf_counter()

import distrax  # noqa: E402
import flax.linen as nn  # noqa: E402
import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from gymnax.wrappers.purerl import LogWrapper  # noqa: E402


class ActorCritic(nn.Module):
    n_actions: int

    @nn.compact
    def __call__(self, x):
        def torso(h):
            for _ in range(2):
                h = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(h))
            return h

        logits = nn.Dense(self.n_actions, kernel_init=nn.initializers.orthogonal(0.01))(torso(x))
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(torso(x))
        return distrax.Categorical(logits=logits), value[..., 0]


def make_train(total_timesteps: int, num_envs: int = 4, num_steps: int = 128, epochs: int = 4, minibatches: int = 4):
    env, params = gymnax.make("CartPole-v1")
    env = LogWrapper(env)
    num_updates = total_timesteps // (num_envs * num_steps)
    batch = num_envs * num_steps
    net = ActorCritic(env.action_space(params).n)
    tx = optax.chain(
        optax.clip_by_global_norm(0.5),
        optax.adam(optax.linear_schedule(2.5e-4, 0.0, num_updates * epochs * minibatches), eps=1e-5),
    )

    def train(rng):
        rng, k_init, k_reset = jax.random.split(rng, 3)
        net_params = net.init(k_init, jnp.zeros(env.observation_space(params).shape))
        opt_state = tx.init(net_params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), params)

        def update(carry, _):
            def env_step(c, _):
                net_params, opt_state, env_state, obs, rng = c
                rng, k_act, k_step = jax.random.split(rng, 3)
                pi, value = net.apply(net_params, obs)
                action = pi.sample(seed=k_act)
                log_prob = pi.log_prob(action)
                obs2, env_state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(k_step, num_envs), env_state, action, params
                )
                done = jnp.logical_or(term, trunc).astype(jnp.float32)
                out = (obs, action, log_prob, value, reward, done, info["returned_episode_returns"], info["returned_episode"])
                return (net_params, opt_state, env_state, obs2, rng), out

            carry, traj = jax.lax.scan(env_step, carry, None, num_steps)
            net_params, opt_state, env_state, obs, rng = carry
            t_obs, t_act, t_logp, t_val, t_rew, t_done, ep_ret, ep_done = traj
            _, last_val = net.apply(net_params, obs)

            def gae_step(c, x):
                adv, next_val = c
                done, value, reward = x
                delta = reward + 0.99 * next_val * (1 - done) - value
                adv = delta + 0.99 * 0.95 * (1 - done) * adv
                return (adv, value), adv

            _, adv = jax.lax.scan(gae_step, (jnp.zeros_like(last_val), last_val), (t_done, t_val, t_rew), reverse=True)
            targets = adv + t_val

            def loss_fn(p, mb):
                o, a, old_logp, old_v, A, tgt = mb
                pi, v = net.apply(p, o)
                logp = pi.log_prob(a)
                v_clip = old_v + jnp.clip(v - old_v, -0.2, 0.2)
                v_loss = 0.5 * jnp.maximum(jnp.square(v - tgt), jnp.square(v_clip - tgt)).mean()
                ratio = jnp.exp(logp - old_logp)
                A = (A - A.mean()) / (A.std() + 1e-8)
                pg = -jnp.minimum(ratio * A, jnp.clip(ratio, 0.8, 1.2) * A).mean()
                return pg + 0.5 * v_loss - 0.01 * pi.entropy().mean()

            def epoch(c, _):
                net_params, opt_state, rng = c
                rng, k_perm = jax.random.split(rng)
                perm = jax.random.permutation(k_perm, batch)
                data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:])[perm].reshape((minibatches, -1) + x.shape[2:]),
                                    (t_obs, t_act, t_logp, t_val, adv, targets))

                def mb_step(c2, mb):
                    p, s = c2
                    g = jax.grad(loss_fn)(p, mb)
                    u, s = tx.update(g, s, p)
                    return (optax.apply_updates(p, u), s), None

                (net_params, opt_state), _ = jax.lax.scan(mb_step, (net_params, opt_state), data)
                return (net_params, opt_state, rng), None

            (net_params, opt_state, rng), _ = jax.lax.scan(epoch, (net_params, opt_state, rng), None, epochs)
            mean_return = (ep_ret * ep_done).sum() / jnp.maximum(ep_done.sum(), 1)
            return (net_params, opt_state, env_state, obs, rng), mean_return

        _, returns = jax.lax.scan(update, (net_params, opt_state, env_state, obs, rng), None, num_updates)
        return returns

    return train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t_import = time.perf_counter() - T0
    returns = jax.block_until_ready(jax.jit(make_train(args.total_timesteps))(jax.random.PRNGKey(args.seed)))
    print(f"imports {t_import:.1f}s, final return {float(returns[-1]):.1f}, total {time.perf_counter() - T0:.1f}s")


if __name__ == "__main__":
    main()
