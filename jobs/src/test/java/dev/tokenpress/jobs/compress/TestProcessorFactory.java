package dev.tokenpress.jobs.compress;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.Flops;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.KeptTokens;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.StageCount;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * A deterministic in-test stand-in for the model runtime, for tests of the Spark plumbing (errors,
 * resume, schemas, UDFs, readers). It decodes PNGs with ImageIO (so broken files fail as they would
 * in the runtime), answers with facts about the image, and returns a small ragged KV cache derived
 * from the id (see {@link #kv}).
 *
 * @param crashOnId id whose processing throws an {@link Error} (simulates a crash), or null
 * @param sleepMs milliseconds of simulated work per record
 */
record TestProcessorFactory(String crashOnId, int sleepMs) implements ProcessorFactory {
  static final int H = 2;
  static final int D = 8;
  static final EngineInfo ENGINE = new EngineInfo("test-model-sha256", "test-engine 1");

  /**
   * The model plans are checked against: a 4x4 patch grid (16 visual tokens), 4 ViT and 4 LM
   * layers.
   */
  static final ModelShape SHAPE = new ModelShape(4, 2, 4, 4, true, 2, 4, 4, H, 32);

  TestProcessorFactory() {
    this(null, 0);
  }

  @Override
  public RecordProcessor create(ProcessorSpec spec, int intraOpThreads) {
    return new Processor(spec, crashOnId, sleepMs);
  }

  @Override
  public EngineInfo describe(ProcessorSpec spec) {
    return ENGINE;
  }

  /** Checks the plan against {@link #SHAPE} with the operators' own rules. */
  @Override
  public void checkPlan(ProcessorSpec spec, CompressionPlan plan) {
    plan.validate(SHAPE);
  }

  /** Thrown to simulate an executor-killing failure. */
  static final class InjectedCrash extends Error {
    private static final long serialVersionUID = 1L;

    InjectedCrash(String id) {
      super("injected crash at " + id);
    }
  }

  static final class Processor implements RecordProcessor {
    private final ProcessorSpec spec;
    private final String crashOnId;
    private final int sleepMs;

    Processor(ProcessorSpec spec, String crashOnId, int sleepMs) {
      this.spec = spec;
      this.crashOnId = crashOnId;
      this.sleepMs = sleepMs;
    }

    @Override
    public RecordResult process(InputRecord r, CompressionPlan plan) {
      if (r.id().equals(crashOnId)) {
        throw new InjectedCrash(r.id());
      }
      int[] wh = dimensions(r.bytes());
      if ((long) wh[0] * wh[1] > spec.maxPixels()) {
        throw new IllegalArgumentException(
            "image "
                + wh[0]
                + "x"
                + wh[1]
                + " has more than model.maxPixels="
                + spec.maxPixels()
                + " pixels");
      }
      var img = decode(r.bytes());
      long sum = 0;
      for (int y = 0; y < img.getHeight(); y++) {
        for (int x = 0; x < img.getWidth(); x++) {
          sum += img.getRGB(x, y) & 0xff;
        }
      }
      if (sleepMs > 0) {
        try {
          Thread.sleep(sleepMs);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException(e);
        }
      }
      String answer =
          "a " + img.getWidth() + "x" + img.getHeight() + " image, blue sum " + (sum % 9973);
      int[] tokens = answer.chars().toArray();
      return new RecordResult(
          answer,
          tokens,
          List.of(new StageCount("visual_tokens", 16, 8)),
          List.of(
              new KeptTokens("random-drop", "VISUAL_TOKENS", -1, 16, keepEven(16), keepEven(16))),
          new Flops(1000, 2000, 300),
          Map.of("vision", 1.0, "prefill", 2.0, "decode", 3.0),
          kv(r.id(), spec.kvPrecision()));
    }

    @Override
    public EngineInfo engineInfo() {
      return ENGINE;
    }

    @Override
    public void close() {}
  }

  static int[] keepEven(int n) {
    int[] k = new int[n / 2];
    for (int i = 0; i < k.length; i++) {
      k[i] = 2 * i;
    }
    return k;
  }

  /**
   * The KV cache the processor returns for {@code id} (also the tests' expectation): layer 0 in the
   * spec's precision with 5..7 entries, layer 1 with 4 entries re-encoded as a ZipVL
   * mixed-precision group (4-bit and 2-bit chunks).
   */
  static KvCache kv(String id, KvPrecision precision) {
    SplittableRandom rnd = new SplittableRandom(id.hashCode());
    KvCache c = new KvCache(2, new KvLayout(H, D), KvCodec.of(precision));
    int t0 = 5 + Math.floorMod(id.hashCode(), 3);
    c.layer(0)
        .appendRows(
            floats(rnd, t0 * H * D),
            0,
            floats(rnd, t0 * H * D),
            0,
            t0,
            range(0, t0),
            range(0, t0),
            0);
    c.layer(1)
        .appendRows(
            floats(rnd, 4 * H * D),
            0,
            floats(rnd, 4 * H * D),
            0,
            4,
            new int[] {0, 2, 4, 5},
            new int[] {0, 2, 4, 5},
            0);
    c.layer(1)
        .recodeMixed(0, 4, new boolean[] {true, false, false, true}, MixedPrecisionEncoder.ZIPVL);
    c.advance(t0, 20);
    return c;
  }

  private static float[] floats(SplittableRandom rnd, int n) {
    float[] f = new float[n];
    for (int i = 0; i < n; i++) {
      f[i] = (float) (rnd.nextDouble() * 2 - 1);
    }
    return f;
  }

  private static int[] range(int from, int to) {
    int[] r = new int[to - from];
    for (int i = 0; i < r.length; i++) {
      r[i] = from + i;
    }
    return r;
  }

  private static int[] dimensions(byte[] bytes) {
    try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
      Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
      if (!readers.hasNext()) {
        throw new IllegalArgumentException(
            "not an image: no decoder recognises the " + bytes.length + " bytes");
      }
      ImageReader reader = readers.next();
      try {
        reader.setInput(in);
        return new int[] {reader.getWidth(0), reader.getHeight(0)};
      } finally {
        reader.dispose();
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read image header: " + e.getMessage(), e);
    }
  }

  private static java.awt.image.BufferedImage decode(byte[] bytes) {
    try {
      var img = ImageIO.read(new ByteArrayInputStream(bytes));
      if (img == null) {
        throw new IllegalArgumentException("not an image");
      }
      return img;
    } catch (IOException e) {
      throw new UncheckedIOException("corrupt image: " + e.getMessage(), e);
    }
  }
}
