"""A small NumPy reference of diffusers' LCMScheduler (timesteps + step) with the step's noise passed in explicitly,
so goldens can be reproduced outside PyTorch: a scheduler in another language (the TypeScript one the app will need
for generation; the app has none yet) is checked against tests/goldens/tiny-sd/lcm_*.json. Checked against diffusers
in tests/test_sd.py. Only the pieces SD 1.5 + LCM-LoRA use: epsilon prediction, no thresholding / clipping.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def alphas_cumprod(config: dict[str, Any]) -> np.ndarray:
    """float32 cumulative product of (1 - beta), beta from the config's schedule (as diffusers computes it)."""
    n = int(config["num_train_timesteps"])
    schedule = config.get("beta_schedule", "scaled_linear")
    b0, b1 = float(config["beta_start"]), float(config["beta_end"])
    if schedule == "scaled_linear":
        betas = np.linspace(b0**0.5, b1**0.5, n, dtype=np.float32) ** 2
    elif schedule == "linear":
        betas = np.linspace(b0, b1, n, dtype=np.float32)
    else:
        raise ValueError(f"beta_schedule {schedule!r} not supported by the reference")
    return np.cumprod((1.0 - betas).astype(np.float32), dtype=np.float32)


def timesteps(config: dict[str, Any], num_inference_steps: int) -> list[int]:
    """LCMScheduler.set_timesteps(num_inference_steps) with the config's original_inference_steps (default 50)."""
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    sched.set_timesteps(num_inference_steps)
    return [int(t) for t in sched.timesteps]


def boundary_scalings(t, timestep_scaling: float = 10.0, sigma_data: float = 0.5):
    """c_skip, c_out of the consistency-model parameterisation at timestep t (Song et al. 2023; diffusers'
    LCMScheduler.get_scalings_for_boundary_condition_discrete and train_lcm_distill_*.py's
    scalings_for_boundary_conditions): t a number, a NumPy array or a torch tensor."""
    s = t * timestep_scaling
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s / (s**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def predicted_original_sample(model_output, sample, alpha_t, sigma_t):
    """x0 from an epsilon prediction: (x_t - sigma_t eps) / alpha_t, alpha_t = sqrt(acp[t]), sigma_t = sqrt(1 -
    acp[t]) (DDPM, Ho et al. 2020 eq. 15); NumPy arrays or torch tensors (broadcast shapes)."""
    return (sample - sigma_t * model_output) / alpha_t


def consistency_output(sample, x0, c_skip, c_out):
    """The consistency function's output c_skip x_t + c_out x0 (LCM's `denoised`)."""
    return c_out * x0 + c_skip * sample


def step(model_output: np.ndarray, t: int, sample: np.ndarray, noise: np.ndarray | None, prev_t: int | None,
         acp: np.ndarray, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One LCM step: (prev_sample, denoised). prev_t None = last step (prev_sample = denoised, noise unused)."""
    if config.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError("reference supports prediction_type 'epsilon' only")
    final = np.float32(1.0) if config.get("set_alpha_to_one", True) else acp[0]
    a_t = acp[t]
    b_t = np.float32(1) - a_t
    c_skip, c_out = boundary_scalings(t, float(config.get("timestep_scaling", 10.0)))
    x0 = predicted_original_sample(model_output, sample, np.sqrt(a_t), np.sqrt(b_t))
    denoised = consistency_output(sample, x0, np.float32(c_skip), np.float32(c_out)).astype(np.float32)
    if prev_t is None:
        return denoised, denoised
    a_prev = acp[prev_t] if prev_t >= 0 else final
    prev = np.sqrt(a_prev) * denoised + np.sqrt(np.float32(1) - a_prev) * noise
    return prev.astype(np.float32), denoised


def generate(unet_fn, vae_fn, text_states: np.ndarray, latents: np.ndarray, noises: list[np.ndarray],
             config: dict[str, Any], num_inference_steps: int = 4, scaling_factor: float = 0.18215):
    """Guidance-free LCM sampling (guidance_scale 1, what LCM-LoRA uses): returns dict with timesteps, the
    denoised latents of every step and the decoded image in [0,1] (NCHW). unet_fn(sample, t[b] float32, states) ->
    eps; vae_fn(latents / scaling_factor) -> image in [-1,1]. noises: one per non-final step."""
    ts = timesteps(config, num_inference_steps)
    acp = alphas_cumprod(config)
    x = latents.astype(np.float32)  # LCMScheduler.init_noise_sigma == 1
    denoised_all = []
    for i, t in enumerate(ts):
        eps = unet_fn(x, np.full((x.shape[0],), float(t), np.float32), text_states)
        prev_t = ts[i + 1] if i + 1 < len(ts) else None
        x, den = step(eps, t, x, noises[i] if prev_t is not None else None, prev_t, acp, config)
        denoised_all.append(den)
    image = vae_fn((denoised_all[-1] / np.float32(scaling_factor)).astype(np.float32))
    image = np.clip(image / 2 + 0.5, 0, 1).astype(np.float32)
    return {"timesteps": ts, "denoised": denoised_all, "image": image}
