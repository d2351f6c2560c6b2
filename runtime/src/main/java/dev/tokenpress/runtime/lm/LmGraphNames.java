package dev.tokenpress.runtime.lm;

/**
 * Input and output names of the LM graphs (the contract between the bundle builder and the
 * runtime).
 */
public final class LmGraphNames {
  private LmGraphNames() {}

  public static final String HIDDEN = "hidden";
  public static final String HIDDEN_OUT = "hidden_out";
  public static final String POSITION_IDS = "position_ids";
  public static final String Q = "q";
  public static final String K = "k";
  public static final String V = "v";
  public static final String ATTN = "attn";
  public static final String BIAS = "bias";
  public static final String LOGITS = "logits";

  public static final String INPUTS_EMBEDS = "inputs_embeds";
  public static final String ATTENTION_BIAS = "attention_bias";

  public static String pastKey(int layer) {
    return "past_key." + layer;
  }

  public static String pastValue(int layer) {
    return "past_value." + layer;
  }

  public static String presentKey(int layer) {
    return "present_key." + layer;
  }

  public static String presentValue(int layer) {
    return "present_value." + layer;
  }
}
