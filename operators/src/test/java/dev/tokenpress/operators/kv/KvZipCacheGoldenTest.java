package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.testing.Golden;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The ZipCache codecs against {@code src/test/python/gen_golden_kv_quant.py} (numpy float32,
 * half-to-even rounding): packed bytes, metadata and dequantised floats agree bit for bit.
 */
@SuppressWarnings("unchecked")
class KvZipCacheGoldenTest {
  private static final Map<String, Object> GOLDEN = Golden.load("kv/kv_quant.json");

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  static byte[] bytes(Object list) {
    int[] ints = Golden.ints(list);
    byte[] b = new byte[ints.length];
    for (int i = 0; i < ints.length; i++) {
      b[i] = (byte) ints[i];
    }
    return b;
  }

  /** Bitwise float equality (distinguishes -0 from 0), with the index in the message. */
  static void assertBits(String what, float[] actual, float[] expected) {
    assertThat(actual).as(what + " length").hasSize(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat(Float.floatToIntBits(actual[i]))
          .as("%s[%d]: %s vs %s", what, i, actual[i], expected[i])
          .isEqualTo(Float.floatToIntBits(expected[i]));
    }
  }

  static void assertEncoding(String name, KvChunk chunk, Map<String, Object> e) {
    KvTensor k = chunk.k();
    KvTensor v = chunk.v();
    int bits = Golden.integer(e.get("bits"));
    assertThat(k.bits()).isEqualTo(bits);
    assertThat(k.data()).as(name + " k bytes").containsExactly(bytes(e.get("k_bytes")));
    assertBits(name + " k scales", k.scales(), Golden.floats(e.get("k_scales")));
    assertBits(name + " k zeros", k.zeros(), Golden.floats(e.get("k_zeros")));
    assertThat(v.data()).as(name + " v bytes").containsExactly(bytes(e.get("v_bytes")));
    assertBits(name + " v scales", v.scales(), Golden.floats(e.get("v_scales")));
    assertBits(name + " v zeros", v.zeros(), Golden.floats(e.get("v_zeros")));
    assertBits(
        name + " v channel scales", v.channelScales(), Golden.floats(e.get("v_channel_scales")));
    assertBits(
        name + " k dequantised from stored form", k.dequantize(), Golden.floats(e.get("k_deq")));
    assertBits(
        name + " v dequantised from stored form", v.dequantize(), Golden.floats(e.get("v_deq")));
  }

  @Test
  void singlePrecisionCasesMatchNumpyBitForBit() {
    int checked = 0;
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("cases"))) {
      String name = (String) c.get("name");
      int rows = Golden.integer(c.get("rows"));
      KvLayout layout =
          new KvLayout(Golden.integer(c.get("kv_heads")), Golden.integer(c.get("head_dim")));
      float[] k = Golden.floats(c.get("k"));
      float[] v = Golden.floats(c.get("v"));
      float[] kCopy = k.clone();
      float[] vCopy = v.clone();
      for (Map<String, Object> e : Golden.objects(c.get("encodings"))) {
        int bits = Golden.integer(e.get("bits"));
        String what = name + " int" + bits;
        KvSegment seg =
            ZipCacheCodec.ofBits(bits).encode(layout, k, v, rows, identity(rows), identity(rows));
        assertThat(seg.precision()).isEqualTo(KvPrecision.ofBits(bits));
        assertThat(seg.rows()).isEqualTo(rows);
        float[] kd = new float[rows * layout.width()];
        float[] vd = new float[rows * layout.width()];
        seg.decodeKeys(kd, 0);
        seg.decodeValues(vd, 0);
        assertBits(what + " k deq", kd, Golden.floats(e.get("k_deq")));
        assertBits(what + " v deq", vd, Golden.floats(e.get("v_deq")));
        List<KvChunk> chunks = seg.export(0);
        assertThat(chunks).hasSize(1);
        assertEncoding(what, chunks.get(0), e);
        // the stored form alone (as a reader gets it from Parquet) gives the same floats
        KvTensor kt = chunks.get(0).k();
        assertBits(
            what + " KvCodecs.dequantize",
            KvCodecs.dequantize(
                kt.dtype(),
                kt.layout(),
                bytes(e.get("k_bytes")),
                new int[] {rows, layout.numKvHeads(), layout.headDim()},
                bits,
                rows,
                Golden.floats(e.get("k_scales")),
                Golden.floats(e.get("k_zeros")),
                null),
            Golden.floats(e.get("k_deq")));
        checked++;
      }
      assertThat(k).as("inputs unchanged").containsExactly(kCopy);
      assertThat(v).as("inputs unchanged").containsExactly(vCopy);
    }
    assertThat(checked).isEqualTo(17);
  }

  @Test
  void tiesRoundHalfToEven() {
    Map<String, Object> ties =
        Golden.objects(GOLDEN.get("cases")).stream()
            .filter(c -> "ties".equals(c.get("name")))
            .findFirst()
            .orElseThrow();
    int[] codes = Golden.ints(Golden.objects(ties.get("encodings")).get(0).get("k_codes"));
    // key channel 0 holds 0, 3, 0.5, 2.5, 1.5 with step 1: half-up would give 0, 3, 1, 3, 2
    assertThat(new int[] {codes[0], codes[4], codes[8], codes[12], codes[16]})
        .containsExactly(0, 3, 0, 2, 2);
    KvSegment seg =
        ZipCacheCodec.ofBits(2)
            .encode(
                new KvLayout(1, 4),
                Golden.floats(ties.get("k")),
                Golden.floats(ties.get("v")),
                5,
                identity(5),
                identity(5));
    float[] kd = new float[20];
    seg.decodeKeys(kd, 0);
    assertThat(new float[] {kd[0], kd[4], kd[8], kd[12], kd[16]})
        .containsExactly(0f, 3f, 0f, 2f, 2f);
  }

  @Test
  void mixedPrecisionMatchesNumpyAndKeepsOrder() {
    Map<String, Object> m = (Map<String, Object>) GOLDEN.get("mixed");
    int rows = Golden.integer(m.get("rows"));
    KvLayout layout =
        new KvLayout(Golden.integer(m.get("kv_heads")), Golden.integer(m.get("head_dim")));
    List<?> mask = (List<?>) m.get("important");
    boolean[] important = new boolean[rows];
    for (int i = 0; i < rows; i++) {
      important[i] = (Boolean) mask.get(i);
    }
    int[] tok = new int[rows];
    int[] pos = new int[rows];
    for (int i = 0; i < rows; i++) {
      tok[i] = 40 + i;
      pos[i] = 7 + 2 * i;
    }
    float[] k = Golden.floats(m.get("k"));
    float[] v = Golden.floats(m.get("v"));
    MixedPrecisionEncoder enc =
        new MixedPrecisionEncoder(
            Golden.integer(m.get("bits_high")), Golden.integer(m.get("bits_low")));
    assertThat(enc).isEqualTo(MixedPrecisionEncoder.ZIPVL);
    KvSegment seg = enc.encode(layout, k, v, rows, tok, pos, important);

    float[] kd = new float[rows * layout.width()];
    float[] vd = new float[rows * layout.width()];
    seg.decodeKeys(kd, 0);
    seg.decodeValues(vd, 0);
    assertBits("mixed k deq", kd, Golden.floats(m.get("k_deq")));
    assertBits("mixed v deq", vd, Golden.floats(m.get("v_deq")));
    for (int r = 0; r < rows; r++) {
      assertThat(seg.tokenIndex(r)).isEqualTo(40 + r);
      assertThat(seg.position(r)).isEqualTo(7 + 2 * r);
      assertThat(seg.precision(r)).isEqualTo(important[r] ? KvPrecision.INT4 : KvPrecision.INT2);
    }

    List<KvChunk> chunks = seg.export(100);
    assertThat(chunks).hasSize(2);
    KvChunk hi = chunks.get(0);
    KvChunk lo = chunks.get(1);
    assertThat(hi.precision()).isEqualTo(KvPrecision.INT4);
    assertThat(lo.precision()).isEqualTo(KvPrecision.INT2);
    int[] highRows = Golden.ints(m.get("high_rows"));
    int[] lowRows = Golden.ints(m.get("low_rows"));
    for (int i = 0; i < highRows.length; i++) {
      assertThat(hi.entries()[i]).isEqualTo(100 + highRows[i]);
      assertThat(hi.tokenIndex()[i]).isEqualTo(40 + highRows[i]);
      assertThat(hi.position()[i]).isEqualTo(7 + 2 * highRows[i]);
    }
    for (int i = 0; i < lowRows.length; i++) {
      assertThat(lo.entries()[i]).isEqualTo(100 + lowRows[i]);
      assertThat(lo.tokenIndex()[i]).isEqualTo(40 + lowRows[i]);
    }
    assertEncoding("mixed high", hi, (Map<String, Object>) m.get("high"));
    assertEncoding("mixed low", lo, (Map<String, Object>) m.get("low"));
    assertThat(hi.k().dtype()).isEqualTo("uint4x2");
    assertThat(lo.k().dtype()).isEqualTo("uint2x4");
  }
}
