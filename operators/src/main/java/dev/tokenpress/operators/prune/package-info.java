/**
 * Token-dropping operators, one class per algorithm with its paper cited in the class comment:
 * {@link dev.tokenpress.operators.prune.RandomDrop} (baseline floor), {@link
 * dev.tokenpress.operators.prune.VtcCls} (VTC-CLS) and {@link dev.tokenpress.operators.prune.FastV}
 * (FastV). Their configs are in {@code dev.tokenpress.operators.api}. {@link
 * dev.tokenpress.operators.prune.MustDrop} (with {@link
 * dev.tokenpress.operators.api.MustDropConfig} and {@link
 * dev.tokenpress.operators.prune.MustDropCalibration}) is MustDrop: its stages as pure functions
 * and the plan operator that runs them at the ViT, prefill, KV-finalize and decode hooks.
 */
package dev.tokenpress.operators.prune;
