package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * A compression plan prepared against one model: operators built and validated ({@link
 * CompressionPlan#bind}), with the CLS-attention layers checked against the ViT layers this bundle
 * runs. Immutable; {@link #record} makes the per-record {@link HookRunner}, the one path by which
 * the vision encoder, the VLM and the LM call the operators at every hook.
 */
final class PlanExecution {
  private final ModelShape shape;
  private final List<TokenOperator> operators;

  /**
   * Prepares {@code plan} for this runtime: {@link CompressionPlan#bind} (the operators' own checks
   * against the model, shared with drivers), then what this runtime supports: the CLS attention of
   * the ViT layers it runs ({@code 0..shape.visionFeatureLayer()}).
   *
   * @throws IllegalArgumentException prefixed with {@code plan[i]}, naming the field, the value and
   *     what is allowed
   */
  PlanExecution(CompressionPlan plan, ModelShape shape) {
    this.shape = shape;
    List<TokenOperator> ops = plan.bind(shape);
    int vitLayersRun = shape.visionFeatureLayer() + 1;
    for (int i = 0; i < ops.size(); i++) {
      TokenOperator op = ops.get(i);
      for (Signal s : op.signals(shape)) {
        if (s instanceof Signal.ClsAttention ca && ca.vitLayer() >= vitLayersRun) {
          throw new IllegalArgumentException(
              "plan["
                  + i
                  + "]: operator "
                  + op.name()
                  + " asks for the CLS attention of ViT layer "
                  + ca.vitLayer()
                  + ", but this bundle runs ViT layers 0.."
                  + (vitLayersRun - 1)
                  + " only (vision_feature_layer); choose layers in that range");
        }
      }
    }
    this.operators = ops;
  }

  boolean isEmpty() {
    return operators.isEmpty();
  }

  /**
   * Whether an operator of the plan acts inside the vision tower ({@link Hook#VISION_LAYER}): only
   * such a plan changes the ViT's computation, so every other plan can use one shared pass per
   * image.
   */
  boolean actsInVision() {
    for (TokenOperator op : operators) {
      if (op.hooks().contains(Hook.VISION_LAYER)) {
        return true;
      }
    }
    return false;
  }

  /**
   * The ViT layers whose CLS attention the plan's operators ask for ({@link Signal.ClsAttention}).
   */
  Set<Integer> clsAttentionLayers() {
    Set<Integer> layers = new TreeSet<>();
    for (TokenOperator op : operators) {
      for (Signal s : op.signals(shape)) {
        if (s instanceof Signal.ClsAttention c) {
          layers.add(c.vitLayer());
        }
      }
    }
    return layers;
  }

  /**
   * Whether no operator of the plan acts in the LM: none at a hook after {@link Hook#VISUAL_TOKENS}
   * (prefill, prefill drops, KV, decode, logits), none with a {@link Hook#BRANCH} sequence and none
   * asking for a probe prefill. The LM then runs the sequence as it is, so rows before the question
   * text are independent of the question (causal attention) and their prefill can be shared.
   */
  boolean leavesLmAlone() {
    for (TokenOperator op : operators) {
      for (Hook h : op.hooks()) {
        if (h != Hook.VISION_LAYER && h != Hook.VISUAL_TOKENS) {
          return false;
        }
      }
      if (op.probeDepth(shape) >= 0) {
        return false;
      }
    }
    return true;
  }

  /**
   * The per-record side of the protocol with {@code probe} (an operator outside any plan, e.g. a
   * diagnostic that only reads signals) after the plan's operators.
   */
  HookRunner record(long seed, TokenOperator probe) {
    probe.validate(shape);
    List<TokenOperator> all = new java.util.ArrayList<>(operators);
    all.add(probe);
    return new HookRunner(all, shape, seed);
  }

  /**
   * The per-record side of the protocol (null for the empty plan). Not thread-safe; one per
   * generation.
   */
  HookRunner record(long seed) {
    return operators.isEmpty() ? null : new HookRunner(operators, shape, seed);
  }
}
