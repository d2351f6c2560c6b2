package dev.tokenpress.evaluate.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.LayerRange;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorConfig;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.VarConfig;
import dev.tokenpress.operators.attention.SinkDimensionSearch;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.Json;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * {@code tokenpress var sinks}: discovers the bundle's visual-sink dimensions ({@code D_sink} of
 * the VAR operator) from the LM's layer-input hidden states on sample ShapesVQA images ({@link
 * SinkDimensionSearch}), prints what it found (the largest normalised activations, the bound {@code
 * sqrt(hiddenSize)}, the sinks per layer VAR would see) and, with {@code --write}, stores the
 * dimensions in the bundle manifest ({@code analysis.var}), where {@code var} with {@code
 * "sink_dims":"bundle"} reads them.
 */
public final class VarSinksCommand {
  static final String USAGE =
      "var sinks --bundle DIR [--split val] [--images 64] [--tau 20] [--layers 2..L-1]\n"
          + "         [--min-image-share 0.5] [--seed 1234] [--write]\n"
          + "  Runs the prefill of one question for each of --images ShapesVQA images of --split and measures, at the\n"
          + "  input of each LM layer of --layers, every hidden dimension's RMS-normalised activation |h[x,d]|/rms(h[x])\n"
          + "  at every position. A dimension is a sink dimension when it exceeds --tau somewhere in at least\n"
          + "  --min-image-share of the images. Prints the top dimensions, the bound sqrt(hidden size) (no dimension\n"
          + "  can exceed it), and the sinks per image and layer VAR would find; --write stores the dimensions\n"
          + "  (possibly none) with tau in the bundle's bundle.json (analysis.var), which changes its sha256.";

  private VarSinksCommand() {}

  /** Feeds the layer-input hidden states of every prefill to the search; changes nothing. */
  private static final class Probe implements TokenOperator {
    private final int[] layers;
    private final SinkDimensionSearch search;

    Probe(int[] layers, SinkDimensionSearch search) {
      this.layers = layers;
      this.search = search;
    }

    @Override
    public String name() {
      return "var-sinks-probe";
    }

    @Override
    public OperatorConfig config() {
      return null;
    }

    @Override
    public Set<Hook> hooks() {
      return EnumSet.of(Hook.PREFILL);
    }

    @Override
    public void validate(ModelShape shape) {}

    @Override
    public List<Signal> signals(ModelShape shape) {
      List<Signal> s = new ArrayList<>();
      for (int l : layers) {
        s.add(new Signal.LmHiddenStates(l));
      }
      return s;
    }

    @Override
    public FloatTensor prefillBias(PrefillContext context) {
      int l = context.layer();
      for (int x : layers) {
        if (x == l) {
          FloatTensor h = context.signals().get(new Signal.LmHiddenStates(l));
          SequenceLayout layout = context.layout();
          boolean[] visual = new boolean[layout.length()];
          for (int r = 0; r < visual.length; r++) {
            visual[r] = layout.isVisual(r);
          }
          search.add(l, h.toArray(), h.dim(0), visual);
        }
      }
      return null;
    }
  }

  public static String run(String[] argv) {
    Args a =
        new Args(
            argv,
            Set.of(
                "--bundle",
                "--split",
                "--images",
                "--tau",
                "--layers",
                "--min-image-share",
                "--seed"),
            Set.of("--write"));
    Path dir = a.path("--bundle");
    String split = a.string("--split", "val");
    int images = a.integer("--images", 64, 1);
    double tau = number(a, "--tau", VarConfig.DEFAULT_TAU);
    double share = number(a, "--min-image-share", 0.5);
    if (!(tau > 0) || !(share > 0 && share <= 1)) {
      throw new UsageException(
          "--tau must be > 0 and --min-image-share in (0, 1], found " + tau + ", " + share);
    }
    long seed;
    try {
      seed = Long.parseLong(a.string("--seed", Long.toString(ShapesVqaSource.TEST_SEED)));
    } catch (NumberFormatException e) {
      throw new UsageException("--seed must be an integer");
    }
    String layersArg = a.string("--layers", VarConfig.DEFAULT_LAYERS);
    ShapesVqaSource data;
    try {
      data = new ShapesVqaSource(seed, 128, split);
    } catch (IllegalArgumentException e) {
      throw new UsageException("--split: " + e.getMessage());
    }
    long t0 = System.nanoTime();
    ObjectNode o = Json.object();
    try (VlmRuntime rt = VlmRuntime.open(dir, VlmOptions.defaults().withMaxNewTokens(1))) {
      ModelShape shape = rt.shape();
      int[] layers;
      try {
        layers = LayerRange.parse(layersArg).resolve(shape.lmLayers(), "--layers");
      } catch (IllegalArgumentException e) {
        throw new UsageException(e.getMessage());
      }
      SinkDimensionSearch search =
          new SinkDimensionSearch(shape.lmHiddenSize(), shape.lmLayers(), tau);
      Probe probe = new Probe(layers, search);
      for (int i = 0; i < images; i++) {
        Scene scene = data.scene(i);
        List<Question> qs = scene.questions();
        Question q = qs.get(i % qs.size());
        search.startImage();
        rt.generate(
            VlmRequest.ofImage(q.id(), ShapesVqaSource.image(scene), q.question())
                .withMaxNewTokens(1),
            probe);
      }
      int[] dims = search.sinkDims(share);
      o.put("bundle", dir.toAbsolutePath().toString());
      o.put("split", split);
      o.put("images", images);
      o.put("layers", layersArg);
      o.put("tau", tau);
      o.put("min_image_share", share);
      o.put("hidden_size", shape.lmHiddenSize());
      o.put("max_possible_normalised_activation", Json.round(search.maxPossible()));
      ArrayNode top = o.putArray("top_dims");
      for (int d : search.topDims(8)) {
        ObjectNode t = top.addObject();
        t.put("dim", d);
        t.put("max_normalised_activation", Json.round(search.maxNorm(d)));
        long[] over = search.positionsOver(d);
        t.put("positions_over_tau", over[0]);
        t.put("visual_positions_over_tau", over[1]);
        t.put("images_over_tau", search.imagesOver(d));
      }
      ObjectNode perLayer = o.putObject("max_normalised_activation_per_layer");
      for (int l : layers) {
        perLayer.put(Integer.toString(l), Json.round(search.layerMax(l)));
      }
      ArrayNode sd = o.putArray("sink_dims");
      for (int d : dims) {
        sd.add(d);
      }
      double[][] sinks = search.sinksPerImage(dims);
      ObjectNode sl = o.putObject("sinks_per_image_by_layer");
      for (int l : layers) {
        ObjectNode x = sl.putObject(Integer.toString(l));
        x.put("all", Json.round(sinks[l][0]));
        x.put("visual", Json.round(sinks[l][1]));
      }
      o.put("seconds", Json.round((System.nanoTime() - t0) / 1e9));
    }
    if (a.flag("--write")) {
      ObjectNode v = Json.object();
      v.set("sink_dims", o.get("sink_dims").deepCopy());
      v.put("tau", tau);
      v.put("layers", layersArg);
      v.put("split", split);
      v.put("images", images);
      v.put("seed", seed);
      v.put("min_image_share", share);
      Bundle b = Bundle.open(dir, Bundle.Verify.SIZE).writeAnalysis("var", v);
      o.put("written", true);
      o.put(
          "model_sha256",
          Bundle.sha256(b.resolve(dev.tokenpress.runtime.bundle.BundleManifest.FILE_NAME)));
    } else {
      o.put("written", false);
    }
    return Json.write(o);
  }

  private static double number(Args a, String name, double fallback) {
    String v = a.string(name, null);
    if (v == null) {
      return fallback;
    }
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new UsageException(name + " must be a number, found '" + v + "'");
    }
  }
}
