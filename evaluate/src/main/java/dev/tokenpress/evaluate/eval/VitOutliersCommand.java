package dev.tokenpress.evaluate.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.operators.api.DamroConfig;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorConfig;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.contrast.Damro;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * {@code tokenpress diagnose vit-outliers}: does the bundle's ViT have the outlier tokens DAMRO
 * relies on? Over ShapesVQA images, per ViT layer: the patch tokens' hidden-state norms (max over
 * median, and how many exceed 3× the median: "high-norm" tokens, Darcet et al. 2024), the CLS
 * attention's concentration (mass of the top {@code k} tokens against the uniform {@code k/N}, max
 * over mean, normalised entropy); at the vision feature layer, where DAMRO's top-{@code k} CLS
 * tokens lie (the share on object patches against the share of object patches overall) and how many
 * of them are also among the top-{@code k} norms.
 */
public final class VitOutliersCommand {
  public static final String USAGE =
      "diagnose vit-outliers --bundle DIR [--split test] [--images 100] [--start 0]\n"
          + "         [--seed 1234] [--k 0]\n"
          + "  Prints, per ViT layer averaged over the images, the patch tokens' hidden-state norm ratio (max/median)\n"
          + "  and count above 3x the median, and the CLS attention's top-k mass against uniform k/N; at the feature\n"
          + "  layer, the share of DAMRO's top-k CLS tokens on object patches and their overlap with the top-k norms.\n"
          + "  --k 0 uses DAMRO's default k for the model.";

  private static final Set<String> OPTIONS =
      Set.of("--bundle", "--split", "--images", "--start", "--seed", "--k");

  /** A patch is high-norm above this multiple of the image's median patch norm. */
  static final double HIGH_NORM = 3.0;

  private VitOutliersCommand() {}

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    Path bundleDir = a.path("--bundle");
    String split = a.string("--split", "test");
    int images = a.integer("--images", 100, 1, 1_000_000);
    int start = a.integer("--start", 0, 0, 1_000_000);
    int kArg = a.integer("--k", 0, 0, 1_000_000);
    ShapesVqaSource data = EvalCommand.dataset(a, split);
    VlmOptions options = VlmOptions.defaults().withSession(new SessionConfig(1, false));
    try (VlmRuntime rt = VlmRuntime.open(bundleDir, options);
        VisionEncoder enc = VisionBundle.openSplit(rt.bundle(), SessionConfig.singleThreaded())) {
      ModelShape shape = rt.shape();
      int f = shape.visionFeatureLayer();
      int n = shape.numPatches();
      int k = Math.min(n, kArg > 0 ? kArg : DamroConfig.defaults().resolveK(n));
      int depths = f + 2; // inputs of layers 0..f, then the output of f
      double[] normRatio = new double[depths];
      double[] highNorm = new double[depths];
      double[] topMass = new double[f + 1];
      double[] maxOverMean = new double[f + 1];
      double[] entropy = new double[f + 1];
      double onObject = 0;
      double objectShare = 0;
      double overlap = 0;
      int grid = VisionBundle.spec(rt.bundle()).config().gridSize();
      for (int i = start; i < start + images; i++) {
        Scene scene = data.scene(i);
        Probe probe = new Probe(f);
        enc.encode(
            rt.preprocessor().preprocess(ShapesVqaSource.image(scene)),
            new HookRunner(List.of(probe), shape, 0L));
        for (int d = 0; d < depths; d++) {
          float[] norms = probe.norms[d];
          float median = median(norms);
          normRatio[d] += max(norms) / median;
          int c = 0;
          for (float x : norms) {
            c += x > HIGH_NORM * median ? 1 : 0;
          }
          highNorm[d] += c;
        }
        for (int l = 0; l <= f; l++) {
          float[] p = Arrays.copyOfRange(probe.cls[l], 1, probe.cls[l].length);
          double total = 0;
          double h = 0;
          for (float x : p) {
            total += x;
          }
          for (float x : p) {
            double q = x / total;
            h -= q > 0 ? q * Math.log(q) : 0;
          }
          double top = 0;
          for (int t : Kernels.topK(p, k)) {
            top += p[t] / total;
          }
          topMass[l] += top;
          maxOverMean[l] += max(p) / (total / p.length);
          entropy[l] += h / Math.log(p.length);
        }
        int[] outliers = Damro.outliers(probe.concat, k);
        boolean[] obj = EvalCommand.Evaluation.objectPatches(scene, grid, n);
        if (obj != null) {
          int on = 0;
          int all = 0;
          for (int t : outliers) {
            on += obj[t] ? 1 : 0;
          }
          for (boolean b : obj) {
            all += b ? 1 : 0;
          }
          onObject += on / (double) outliers.length;
          objectShare += all / (double) n;
        }
        Set<Integer> topNorm = new java.util.HashSet<>();
        for (int t : Kernels.topK(probe.norms[depths - 1], k)) {
          topNorm.add(t);
        }
        int both = 0;
        for (int t : outliers) {
          both += topNorm.contains(t) ? 1 : 0;
        }
        overlap += both / (double) k;
      }
      ObjectMapper m = new ObjectMapper();
      ObjectNode o = m.createObjectNode();
      o.put("bundle", bundleDir.toAbsolutePath().toString());
      o.put("split", split);
      o.put("images", images);
      o.put("patches", n);
      o.put("k", k);
      o.put("vision_feature_layer", f);
      ArrayNode norms = o.putArray("patch_norms");
      for (int d = 0; d < depths; d++) {
        ObjectNode x = norms.addObject();
        x.put("at", d <= f ? "input of layer " + d : "output of layer " + f);
        x.put("max_over_median", EvalCommand.Evaluation.round(normRatio[d] / images));
        x.put("tokens_above_3x_median", EvalCommand.Evaluation.round(highNorm[d] / images));
      }
      ArrayNode cls = o.putArray("cls_attention");
      for (int l = 0; l <= f; l++) {
        ObjectNode x = cls.addObject();
        x.put("layer", l);
        x.put("top_k_mass", EvalCommand.Evaluation.round(topMass[l] / images));
        x.put("uniform_top_k_mass", EvalCommand.Evaluation.round(k / (double) n));
        x.put("max_over_mean", EvalCommand.Evaluation.round(maxOverMean[l] / images));
        x.put("normalised_entropy", EvalCommand.Evaluation.round(entropy[l] / images));
      }
      ObjectNode dm = o.putObject("damro_outliers");
      dm.put("on_object_share", EvalCommand.Evaluation.round(onObject / images));
      dm.put("object_patch_share", EvalCommand.Evaluation.round(objectShare / images));
      dm.put("overlap_with_top_k_norms", EvalCommand.Evaluation.round(overlap / images));
      try {
        return m.writerWithDefaultPrettyPrinter().writeValueAsString(o);
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  private static float median(float[] x) {
    float[] s = x.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  private static float max(float[] x) {
    float m = Float.NEGATIVE_INFINITY;
    for (float v : x) {
      m = Math.max(m, v);
    }
    return m;
  }

  /** Reads the signals at every ViT layer run, keeping every token. */
  private static final class Probe implements TokenOperator {
    private final int feature;
    final float[][] norms;
    final float[][] cls;
    float[] concat;

    Probe(int feature) {
      this.feature = feature;
      this.norms = new float[feature + 2][];
      this.cls = new float[feature + 1][];
    }

    @Override
    public String name() {
      return "vit-outliers";
    }

    @Override
    public OperatorConfig config() {
      return null;
    }

    @Override
    public Set<Hook> hooks() {
      return EnumSet.of(Hook.VISION_LAYER);
    }

    @Override
    public void validate(ModelShape shape) {}

    @Override
    public VisionPoint visionPoint() {
      return VisionPoint.AFTER_LAYER;
    }

    @Override
    public List<Signal> signals(ModelShape shape) {
      List<Signal> s = new ArrayList<>();
      for (int l = 0; l <= feature; l++) {
        s.add(new Signal.VitHiddenStates(l));
        s.add(new Signal.VitClsAttention(l));
      }
      s.add(new Signal.VitLayerOutput(feature));
      s.add(new Signal.VitClsLogits(feature));
      return s;
    }

    @Override
    public TokenReduction reduceVisionLayer(VisionLayerContext c) {
      int l = c.layer();
      norms[l] = patchNorms(c.signals().get(new Signal.VitHiddenStates(l)));
      cls[l] = c.signals().get(new Signal.VitClsAttention(l)).toArray();
      if (l == feature) {
        norms[feature + 1] = patchNorms(c.signals().get(new Signal.VitLayerOutput(l)));
        FloatTensor z = c.signals().get(new Signal.VitClsLogits(l));
        concat = Damro.scores(z.toArray(), z.dim(0), z.dim(1), DamroConfig.Mode.CONCAT_LOGITS);
      }
      return TokenReduction.keepAll(c.tokens());
    }

    private static float[] patchNorms(FloatTensor h) {
      int t = h.dim(0);
      int d = h.dim(1);
      float[] x = h.toArray();
      float[] out = new float[t - 1];
      for (int r = 1; r < t; r++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
          s += (double) x[r * d + j] * x[r * d + j];
        }
        out[r - 1] = (float) Math.sqrt(s);
      }
      return out;
    }
  }
}
