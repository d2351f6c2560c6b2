package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCodecs;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvTensor;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.OutOfMemoryException;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.complex.impl.UnionListWriter;
import org.apache.arrow.vector.complex.writer.BaseWriter.ListWriter;
import org.apache.arrow.vector.complex.writer.BaseWriter.StructWriter;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.arrow.vector.util.Text;

/**
 * Exports one record's KV cache (the operators' {@link KvCache}, e.g. from {@link KvCacheReader})
 * as an Arrow IPC file: one row per layer, {@code k} and {@code v} as the canonical {@code
 * arrow.variable_shape_tensor} (float32, dims {@code T, H_kv, D}), {@code token_index} and {@code
 * position} as {@code list<int32>}, schema metadata {@code id} and {@code next_position}. In
 * Python: {@code pa.ipc.open_file(f).read_all()}.
 *
 * <p>The dequantised {@code k}/{@code v} come with what an Arrow consumer needs to dequantise the
 * stored form itself: {@code compression} (struct, null when no operator quantised the layer:
 * operator, mode, tau, scored, ratio_count, important, probe_seed, bits_high, bits_low, heads,
 * head_ratio_counts, head_important, as the Parquet column), {@code trailing_float} (entries at the
 * end still in a float precision), {@code important_entries} ({@code list<int32>}, the entries
 * stored at {@code bits_high} in some KV head apart from the trailing ones; null without
 * compression or chunks) and {@code chunks} ({@code list<struct<entries: list<int32>, kv_head:
 * int32 (null: every KV head), k: tensor, v: tensor>>}, the layer's Parquet chunks, a chunk of one
 * KV head g having tensors of shape {@code [rows, 1, D]}; each tensor struct with the fields of the
 * Parquet {@code k}/{@code v} structs: data (packed codes or float bytes), shape, dtype, layout,
 * bits, group_size, scales, zeros, channel_scales; decoded as in {@code KvCodecs}' PyArrow recipe):
 * {@link LayerKvCache#chunks()}, from which {@link #read} rebuilds the same cache ({@link
 * KvCache#fromChunks}).
 *
 * <p>All off-heap buffers come from a child of the caller's allocator limited to {@code maxBytes}:
 * a cache that does not fit fails with a {@link KvExportTooLargeException} naming the sizes instead
 * of exhausting direct memory, and every buffer is released on return (callers can check with
 * {@link BufferAllocator#getAllocatedMemory()}).
 */
public final class KvArrowExport {
  private static final VariableShapeTensorType TENSOR =
      new VariableShapeTensorType(List.of("T", "H_kv", "D"));

  private KvArrowExport() {}

  /** A KV cache needs more off-heap memory than the export's limit. */
  public static final class KvExportTooLargeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    KvExportTooLargeException(String id, long needed, long limit, Throwable cause) {
      super(
          "Arrow export of the KV cache of '"
              + id
              + "' needs about "
              + needed
              + " bytes of off-heap buffers, over the "
              + "limit of "
              + limit
              + " bytes",
          cause);
    }
  }

  /** A cache read back with the record id stored in the file's schema metadata. */
  public record Read(String id, KvCache cache) {}

  /** The IPC schema of the cache of record {@code id}. */
  public static Schema schema(String id, KvCache cache) {
    List<Field> fields =
        List.of(
            new Field("layer", FieldType.notNullable(new ArrowType.Int(32, true)), null),
            TENSOR.field("k"),
            TENSOR.field("v"),
            intList("token_index"),
            intList("position"),
            new Field(
                "compression",
                FieldType.nullable(ArrowType.Struct.INSTANCE),
                List.of(
                    prim("operator", ArrowType.Utf8.INSTANCE),
                    prim("mode", ArrowType.Utf8.INSTANCE),
                    prim("tau", new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE)),
                    prim("scored", INT),
                    prim("ratio_count", INT),
                    prim("important", INT),
                    prim("probe_seed", new ArrowType.Int(64, true)),
                    prim("bits_high", INT),
                    prim("bits_low", INT),
                    prim("heads", ArrowType.Utf8.INSTANCE),
                    intList("head_ratio_counts"),
                    intList("head_important"))),
            new Field("trailing_float", FieldType.notNullable(INT), null),
            new Field(
                "important_entries",
                FieldType.nullable(ArrowType.List.INSTANCE),
                List.of(new Field("item", FieldType.notNullable(INT), null))),
            new Field(
                "chunks",
                FieldType.notNullable(ArrowType.List.INSTANCE),
                List.of(
                    new Field(
                        "item",
                        FieldType.notNullable(ArrowType.Struct.INSTANCE),
                        List.of(
                            intList("entries"),
                            new Field("kv_head", FieldType.nullable(INT), null),
                            storedTensor("k"),
                            storedTensor("v"))))));
    return new Schema(
        fields,
        Map.of(
            "id",
            id,
            "next_position",
            String.valueOf(cache.nextPosition()),
            "producer",
            "tokenpress"));
  }

  /**
   * Writes the cache of record {@code id} to {@code out}.
   *
   * @param maxBytes limit of off-heap memory for this export
   */
  public static void write(
      String id, KvCache cache, WritableByteChannel out, BufferAllocator allocator, long maxBytes) {
    long needed = estimate(cache);
    KvLayout layout = cache.layout();
    try (BufferAllocator child = allocator.newChildAllocator("kv-export-" + id, 0, maxBytes);
        VectorSchemaRoot root = VectorSchemaRoot.create(schema(id, cache), child)) {
      IntVector layer = (IntVector) root.getVector("layer");
      for (int i = 0; i < cache.numLayers(); i++) {
        LayerKvCache l = cache.layer(i);
        int[] shape = {l.length(), layout.numKvHeads(), layout.headDim()};
        layer.setSafe(i, i);
        putTensor(root.getVector("k"), i, l.keys(), shape);
        putTensor(root.getVector("v"), i, l.values(), shape);
        putInts((ListVector) root.getVector("token_index"), i, l.tokenIndices());
        putInts((ListVector) root.getVector("position"), i, l.positions());
        putCompression((StructVector) root.getVector("compression"), i, l.compressionInfo());
        ((IntVector) root.getVector("trailing_float")).setSafe(i, l.trailingFloatEntries());
        int[] important = l.importantEntries();
        if (important != null) {
          putInts((ListVector) root.getVector("important_entries"), i, important);
        }
        putChunks((ListVector) root.getVector("chunks"), i, l.chunks());
      }
      root.setRowCount(cache.numLayers());
      try (ArrowFileWriter writer = new ArrowFileWriter(root, null, out)) {
        writer.start();
        writer.writeBatch();
        writer.end();
      }
    } catch (OutOfMemoryException e) {
      throw new KvExportTooLargeException(id, needed, maxBytes, e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write Arrow IPC for " + id, e);
    }
  }

  /**
   * Reads a file written by {@link #write} back (for tests and Java consumers): the cache is
   * rebuilt from the stored {@code chunks} (token indices and positions from the layer's lists),
   * without re-quantising, appending at {@link KvCacheReader#appendCodec}; the dequantised {@code
   * k}/{@code v} columns must equal the rebuilt floats.
   */
  public static Read read(SeekableByteChannel in, BufferAllocator allocator) {
    VariableShapeTensorType.register();
    try (ArrowFileReader reader = new ArrowFileReader(in, allocator)) {
      VectorSchemaRoot root = reader.getVectorSchemaRoot();
      Map<String, String> meta = root.getSchema().getCustomMetadata();
      List<List<KvChunk>> chunks = new ArrayList<>();
      List<KvCompressionInfo> compressions = new ArrayList<>();
      List<float[]> keys = new ArrayList<>();
      List<float[]> values = new ArrayList<>();
      while (reader.loadNextBatch()) {
        IntVector layer = (IntVector) root.getVector("layer");
        for (int i = 0; i < root.getRowCount(); i++) {
          if (layer.get(i) != chunks.size()) {
            throw new IllegalArgumentException(
                "Arrow KV file has layer "
                    + layer.get(i)
                    + " where layer "
                    + chunks.size()
                    + " was expected (layers in order from 0)");
          }
          chunks.add(
              chunks(
                  (ListVector) root.getVector("chunks"),
                  i,
                  ints((ListVector) root.getVector("token_index"), i),
                  ints((ListVector) root.getVector("position"), i)));
          compressions.add(compression((StructVector) root.getVector("compression"), i));
          keys.add(floats(root.getVector("k"), i));
          values.add(floats(root.getVector("v"), i));
        }
      }
      KvCache cache =
          KvCache.fromChunks(
              KvCacheReader.appendCodec(chunks),
              chunks,
              compressions,
              Integer.parseInt(meta.get("next_position")));
      for (int l = 0; l < keys.size(); l++) {
        if (!Arrays.equals(keys.get(l), cache.layer(l).keys())
            || !Arrays.equals(values.get(l), cache.layer(l).values())) {
          throw new IllegalArgumentException(
              "layer " + l + ": the k/v columns differ from the floats of its chunks");
        }
      }
      return new Read(meta.get("id"), cache);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read Arrow IPC", e);
    }
  }

  /** Off-heap bytes the export needs, roughly (values, offsets, validity, shapes). */
  public static long estimate(KvCache cache) {
    long n = 0;
    int w = cache.layout().width();
    for (int i = 0; i < cache.numLayers(); i++) {
      LayerKvCache l = cache.layer(i);
      n += 8L * l.length() * w + 8L * (l.length() + 16);
      for (KvChunk c : l.chunks()) {
        n += 8L * c.rows() + stored(c.k()) + stored(c.v()) + 256;
      }
    }
    return n;
  }

  private static final ArrowType INT = new ArrowType.Int(32, true);

  private static long stored(KvTensor t) {
    return t.data().length
        + 4L * (t.scales().length + t.zeros().length + t.channelScales().length + 8);
  }

  private static Field prim(String name, ArrowType type) {
    return new Field(name, FieldType.notNullable(type), null);
  }

  private static Field floatList(String name) {
    return new Field(
        name,
        FieldType.notNullable(ArrowType.List.INSTANCE),
        List.of(
            new Field(
                "item",
                FieldType.notNullable(new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE)),
                null)));
  }

  /** The Parquet {@code k}/{@code v} tensor struct ({@code OutputSchemas.TENSOR}) in Arrow. */
  private static Field storedTensor(String name) {
    return new Field(
        name,
        FieldType.notNullable(ArrowType.Struct.INSTANCE),
        List.of(
            prim("data", ArrowType.Binary.INSTANCE),
            intList("shape"),
            prim("dtype", ArrowType.Utf8.INSTANCE),
            prim("layout", ArrowType.Utf8.INSTANCE),
            prim("bits", INT),
            prim("group_size", INT),
            floatList("scales"),
            floatList("zeros"),
            floatList("channel_scales")));
  }

  private static void putCompression(StructVector vector, int row, KvCompressionInfo c) {
    if (c == null) {
      vector.setNull(row);
      return;
    }
    StructWriter w = vector.getWriter();
    w.setPosition(row);
    w.start();
    w.varChar("operator").writeVarChar(new Text(c.operator()));
    w.varChar("mode").writeVarChar(new Text(c.mode()));
    w.float8("tau").writeFloat8(c.tau());
    w.integer("scored").writeInt(c.scored());
    w.integer("ratio_count").writeInt(c.ratioCount());
    w.integer("important").writeInt(c.important());
    w.bigInt("probe_seed").writeBigInt(c.probeSeed());
    w.integer("bits_high").writeInt(c.bitsHigh());
    w.integer("bits_low").writeInt(c.bitsLow());
    w.varChar("heads").writeVarChar(new Text(c.heads()));
    writeInts(w.list("head_ratio_counts"), c.headRatioCounts());
    writeInts(w.list("head_important"), c.headImportant());
    w.end();
  }

  private static void putChunks(ListVector vector, int row, List<KvChunk> chunks) {
    UnionListWriter w = vector.getWriter();
    w.setPosition(row);
    w.startList();
    for (KvChunk c : chunks) {
      StructWriter s = w.struct();
      s.start();
      writeInts(s.list("entries"), c.entries());
      if (c.kvHead() >= 0) {
        s.integer("kv_head").writeInt(c.kvHead());
      }
      putStored(s.struct("k"), c.k());
      putStored(s.struct("v"), c.v());
      s.end();
    }
    w.endList();
  }

  private static void putStored(StructWriter w, KvTensor t) {
    w.start();
    w.varBinary("data").writeVarBinary(t.data());
    writeInts(w.list("shape"), t.shape());
    w.varChar("dtype").writeVarChar(new Text(t.dtype()));
    w.varChar("layout").writeVarChar(new Text(t.layout()));
    w.integer("bits").writeInt(t.bits());
    w.integer("group_size").writeInt(t.groupSize());
    writeFloats(w.list("scales"), t.scales());
    writeFloats(w.list("zeros"), t.zeros());
    writeFloats(w.list("channel_scales"), t.channelScales());
    w.end();
  }

  private static void writeInts(ListWriter l, int[] values) {
    l.startList();
    for (int x : values) {
      l.integer().writeInt(x);
    }
    l.endList();
  }

  private static void writeFloats(ListWriter l, float[] values) {
    l.startList();
    for (float x : values) {
      l.float4().writeFloat4(x);
    }
    l.endList();
  }

  private static KvCompressionInfo compression(StructVector vector, int row) {
    if (vector.isNull(row)) {
      return null;
    }
    Map<?, ?> m = (Map<?, ?>) vector.getObject(row);
    return new KvCompressionInfo(
        m.get("operator").toString(),
        m.get("mode").toString(),
        (Double) m.get("tau"),
        (Integer) m.get("scored"),
        (Integer) m.get("ratio_count"),
        (Integer) m.get("important"),
        (Long) m.get("probe_seed"),
        (Integer) m.get("bits_high"),
        (Integer) m.get("bits_low"),
        m.get("heads") == null ? KvCompressionInfo.HEADS_SHARED : m.get("heads").toString(),
        intArray(m.get("head_ratio_counts")),
        intArray(m.get("head_important")));
  }

  /** A layer's chunks; each row's token index and position from the layer's lists at its entry. */
  private static List<KvChunk> chunks(
      ListVector vector, int row, int[] tokenIndex, int[] position) {
    List<?> list = vector.getObject(row);
    List<KvChunk> out = new ArrayList<>(list.size());
    for (Object o : list) {
      Map<?, ?> m = (Map<?, ?>) o;
      Object g = m.get("kv_head");
      int[] entries = intArray(m.get("entries"));
      int[] ti = new int[entries.length];
      int[] pos = new int[entries.length];
      for (int i = 0; i < entries.length; i++) {
        if (entries[i] < 0 || entries[i] >= tokenIndex.length) {
          throw new IllegalArgumentException(
              "layer row "
                  + row
                  + ": chunk entry "
                  + entries[i]
                  + " is outside the "
                  + tokenIndex.length
                  + " entries of token_index");
        }
        ti[i] = tokenIndex[entries[i]];
        pos[i] = position[entries[i]];
      }
      KvTensor k = tensor((Map<?, ?>) m.get("k"));
      out.add(
          KvChunk.of(
              entries,
              ti,
              pos,
              KvCodecs.precision(k.dtype()),
              k,
              tensor((Map<?, ?>) m.get("v")),
              g == null ? -1 : (Integer) g));
    }
    return out;
  }

  private static KvTensor tensor(Map<?, ?> m) {
    return KvTensor.of(
        m.get("dtype").toString(),
        m.get("layout").toString(),
        (byte[]) m.get("data"),
        intArray(m.get("shape")),
        (Integer) m.get("bits"),
        (Integer) m.get("group_size"),
        floatArray(m.get("scales")),
        floatArray(m.get("zeros")),
        floatArray(m.get("channel_scales")));
  }

  private static int[] intArray(Object list) {
    List<?> l = list == null ? List.of() : (List<?>) list;
    int[] out = new int[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (Integer) l.get(i);
    }
    return out;
  }

  private static float[] floatArray(Object list) {
    List<?> l = list == null ? List.of() : (List<?>) list;
    float[] out = new float[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (Float) l.get(i);
    }
    return out;
  }

  private static Field intList(String name) {
    return new Field(
        name,
        FieldType.notNullable(ArrowType.List.INSTANCE),
        List.of(new Field("item", FieldType.notNullable(new ArrowType.Int(32, true)), null)));
  }

  private static StructVector storage(FieldVector v) {
    return ((VariableShapeTensorType.Vector) v).getUnderlyingVector();
  }

  private static StructVector storageOf(FieldVector v) {
    return v instanceof VariableShapeTensorType.Vector t
        ? t.getUnderlyingVector()
        : (StructVector) v;
  }

  private static void putTensor(FieldVector vector, int row, float[] values, int[] shape) {
    StructVector s = storage(vector);
    ListVector data = (ListVector) s.getChild("data");
    Float4Vector items = (Float4Vector) data.getDataVector();
    int start = data.startNewValue(row);
    for (int i = 0; i < values.length; i++) {
      items.setSafe(start + i, values[i]);
    }
    data.endValue(row, values.length);
    FixedSizeListVector sh = (FixedSizeListVector) s.getChild("shape");
    IntVector dims = (IntVector) sh.getDataVector();
    int base = sh.startNewValue(row);
    for (int j = 0; j < shape.length; j++) {
      dims.setSafe(base + j, shape[j]);
    }
    s.setIndexDefined(row);
  }

  private static void putInts(ListVector list, int row, int[] values) {
    IntVector items = (IntVector) list.getDataVector();
    int start = list.startNewValue(row);
    for (int i = 0; i < values.length; i++) {
      items.setSafe(start + i, values[i]);
    }
    list.endValue(row, values.length);
  }

  private static float[] floats(FieldVector vector, int row) {
    ListVector data = (ListVector) storageOf(vector).getChild("data");
    Float4Vector items = (Float4Vector) data.getDataVector();
    int from = data.getElementStartIndex(row);
    int to = data.getElementEndIndex(row);
    float[] out = new float[to - from];
    for (int i = 0; i < out.length; i++) {
      out[i] = items.get(from + i);
    }
    return out;
  }

  private static int[] ints(ListVector list, int row) {
    IntVector items = (IntVector) list.getDataVector();
    int from = list.getElementStartIndex(row);
    int to = list.getElementEndIndex(row);
    int[] out = new int[to - from];
    for (int i = 0; i < out.length; i++) {
      out[i] = items.get(from + i);
    }
    return out;
  }

  /** For {@link java.io.OutputStream} users. */
  public static WritableByteChannel channel(java.io.OutputStream out) {
    return Channels.newChannel(out);
  }
}
