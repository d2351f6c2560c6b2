package dev.tokenpress.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
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
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Exports one record's KV cache as an Arrow IPC file: one row per layer, {@code k} and {@code v}
 * as the canonical {@code arrow.variable_shape_tensor} (float32, dims {@code T, H_kv, D}),
 * {@code token_index} and {@code position} as {@code list<int32>}, schema metadata {@code id} and
 * {@code next_position}. In Python: {@code pa.ipc.open_file(f).read_all()}.
 *
 * <p>All off-heap buffers come from a child of the caller's allocator limited to {@code
 * maxBytes}: a cache that does not fit fails with a {@link KvExportTooLargeException} naming the
 * sizes instead of exhausting direct memory, and every buffer is released on return (callers can
 * check with {@link BufferAllocator#getAllocatedMemory()}).
 */
public final class KvArrowExport {
  private static final VariableShapeTensorType TENSOR = new VariableShapeTensorType(List.of("T", "H_kv", "D"));

  private KvArrowExport() {}

  /** A KV cache needs more off-heap memory than the export's limit. */
  public static final class KvExportTooLargeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    KvExportTooLargeException(String id, long needed, long limit, Throwable cause) {
      super("Arrow export of the KV cache of '" + id + "' needs about " + needed + " bytes of off-heap buffers, over the "
          + "limit of " + limit + " bytes", cause);
    }
  }

  /** The IPC schema. */
  public static Schema schema(KvCache cache) {
    List<Field> fields = List.of(
        new Field("layer", FieldType.notNullable(new ArrowType.Int(32, true)), null),
        TENSOR.field("k"),
        TENSOR.field("v"),
        intList("token_index"),
        intList("position"));
    return new Schema(fields, Map.of("id", cache.id(), "next_position", String.valueOf(cache.nextPosition()),
        "producer", "tokenpress"));
  }

  /**
   * Writes {@code cache} to {@code out}.
   *
   * @param maxBytes limit of off-heap memory for this export
   */
  public static void write(KvCache cache, WritableByteChannel out, BufferAllocator allocator, long maxBytes) {
    long needed = estimate(cache);
    try (BufferAllocator child = allocator.newChildAllocator("kv-export-" + cache.id(), 0, maxBytes);
        VectorSchemaRoot root = VectorSchemaRoot.create(schema(cache), child)) {
      List<KvLayer> layers = cache.layers();
      IntVector layer = (IntVector) root.getVector("layer");
      for (int i = 0; i < layers.size(); i++) {
        KvLayer l = layers.get(i);
        layer.setSafe(i, l.layer());
        putTensor(root.getVector("k"), i, l.k(), l.kShape());
        putTensor(root.getVector("v"), i, l.v(), l.vShape());
        putInts((ListVector) root.getVector("token_index"), i, l.tokenIndex());
        putInts((ListVector) root.getVector("position"), i, l.position());
      }
      root.setRowCount(layers.size());
      try (ArrowFileWriter writer = new ArrowFileWriter(root, null, out)) {
        writer.start();
        writer.writeBatch();
        writer.end();
      }
    } catch (OutOfMemoryException e) {
      throw new KvExportTooLargeException(cache.id(), needed, maxBytes, e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write Arrow IPC for " + cache.id(), e);
    }
  }

  /** Reads a file written by {@link #write} back (for tests and Java consumers). */
  public static KvCache read(SeekableByteChannel in, BufferAllocator allocator) {
    VariableShapeTensorType.register();
    try (ArrowFileReader reader = new ArrowFileReader(in, allocator)) {
      VectorSchemaRoot root = reader.getVectorSchemaRoot();
      Map<String, String> meta = root.getSchema().getCustomMetadata();
      List<KvLayer> layers = new ArrayList<>();
      while (reader.loadNextBatch()) {
        IntVector layer = (IntVector) root.getVector("layer");
        for (int i = 0; i < root.getRowCount(); i++) {
          int[] kShape = shape(root.getVector("k"), i);
          int[] vShape = shape(root.getVector("v"), i);
          layers.add(new KvLayer(layer.get(i), floats(root.getVector("k"), i), kShape, floats(root.getVector("v"), i),
              vShape, ints((ListVector) root.getVector("token_index"), i), ints((ListVector) root.getVector("position"), i)));
        }
      }
      return new KvCache(meta.get("id"), Integer.parseInt(meta.get("next_position")), layers);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read Arrow IPC", e);
    }
  }

  /** Off-heap bytes the export needs, roughly (values, offsets, validity, shapes). */
  public static long estimate(KvCache cache) {
    long n = 0;
    for (KvLayer l : cache.layers()) {
      n += 4L * (l.k().length + l.v().length) + 8L * (l.tokenIndex().length + 16);
    }
    return n;
  }

  private static Field intList(String name) {
    return new Field(name, FieldType.notNullable(ArrowType.List.INSTANCE),
        List.of(new Field("item", FieldType.notNullable(new ArrowType.Int(32, true)), null)));
  }

  private static StructVector storage(FieldVector v) {
    return ((VariableShapeTensorType.Vector) v).getUnderlyingVector();
  }

  private static StructVector storageOf(FieldVector v) {
    return v instanceof VariableShapeTensorType.Vector t ? t.getUnderlyingVector() : (StructVector) v;
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

  private static int[] shape(FieldVector vector, int row) {
    FixedSizeListVector sh = (FixedSizeListVector) storageOf(vector).getChild("shape");
    IntVector dims = (IntVector) sh.getDataVector();
    int n = sh.getListSize();
    int[] out = new int[n];
    for (int j = 0; j < n; j++) {
      out[j] = dims.get(row * n + j);
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
