package dev.tokenpress.runtime.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Builds one ONNX graph (opset 17) from Java, over the {@code OnnxMl} protobuf classes. Values are
 * referred to by name: every op method returns the name of its (fresh) output.
 *
 * <pre>{@code
 * GraphBuilder g = new GraphBuilder("layer_0_post");
 * String x = g.input("hidden", DataType.FLOAT, "batch", "seq", 64);
 * String w = g.weight("layers.0.o_proj.weight_t", new long[] {64, 64}, () -> transposed);
 * g.output(g.add(x, g.matMul(x, w)), "hidden_out", DataType.FLOAT, "batch", "seq", 64);
 * g.write(dir.resolve("layer_0_post.onnx"), externalWeights);
 * }</pre>
 *
 * <p>Weights are registered with a supplier so their data is produced only when written (and never
 * when an {@link ExternalWeights} file already holds the key). Weight names are keys: the same name
 * in two graphs of one directory means the same data.
 *
 * <p>Dims of inputs/outputs: an {@code Integer}/{@code Long} is fixed, a {@code String} symbolic,
 * {@code null} unknown.
 */
public final class GraphBuilder {
  public static final int OPSET = 17;
  public static final long IR_VERSION = 8;

  /** Float weights smaller than this stay inline even when writing with external data. */
  public static final long INLINE_BYTES = 1024;

  private final String name;
  private final List<NodeProto.Builder> nodes = new ArrayList<>();
  private final List<ValueInfoProto> inputs = new ArrayList<>();
  private final List<ValueInfoProto> outputs = new ArrayList<>();
  private final Map<String, Init> inits = new LinkedHashMap<>();
  private final Set<String> names = new HashSet<>();
  private final Map<String, String> renames = new HashMap<>();
  private final Map<String, String> constCache = new HashMap<>();
  private int counter;

  private static final class Init {
    final String name;
    final DataType type;
    final long[] dims;
    final Supplier<float[]> floats;
    final long[] longs;
    final boolean externalizable;

    Init(
        String name,
        DataType type,
        long[] dims,
        Supplier<float[]> floats,
        long[] longs,
        boolean externalizable) {
      this.name = name;
      this.type = type;
      this.dims = dims;
      this.floats = floats;
      this.longs = longs;
      this.externalizable = externalizable;
    }

    long elements() {
      long n = 1;
      for (long d : dims) {
        n *= d;
      }
      return n;
    }
  }

  public GraphBuilder(String name) {
    this.name = name;
  }

  public String name() {
    return name;
  }

  // ---------------------------------------------------------------- declarations

  /** Declares a graph input. */
  public String input(String inputName, DataType type, Object... dims) {
    claim(inputName);
    inputs.add(valueInfo(inputName, type, dims));
    return inputName;
  }

  /** Declares {@code value} as the graph output {@code outputName}. */
  public void output(String value, String outputName, DataType type, Object... dims) {
    if (!value.equals(outputName)) {
      boolean produced = false;
      for (NodeProto.Builder n : nodes) {
        if (n.getOutputList().contains(value)) {
          produced = true;
          break;
        }
      }
      if (produced && !renames.containsKey(value)) {
        claim(outputName);
        renames.put(value, outputName);
      } else {
        claim(outputName);
        nodes.add(
            NodeProto.newBuilder()
                .setOpType("Identity")
                .setName(fresh("identity"))
                .addInput(value)
                .addOutput(outputName));
      }
    }
    outputs.add(valueInfo(outputName, type, dims));
  }

  /**
   * A float weight (externalizable); the supplier runs only if the data must be written. Returns
   * the initializer name (= {@code weightName}).
   */
  public String weight(String weightName, long[] dims, Supplier<float[]> data) {
    claim(weightName);
    inits.put(weightName, new Init(weightName, DataType.FLOAT, dims.clone(), data, null, true));
    return weightName;
  }

  /** A small float constant, always inline. */
  public String constant(float[] data, long... dims) {
    String n = fresh("const");
    float[] copy = data.clone();
    inits.put(n, new Init(n, DataType.FLOAT, dims.clone(), () -> copy, null, false));
    return n;
  }

  /** A float scalar constant (rank 0), shared within the graph. */
  public String scalar(float v) {
    return constCache.computeIfAbsent(
        "f" + Float.floatToIntBits(v), k -> constant(new float[] {v}));
  }

  /** A 1-D int64 constant (shapes, axes, indices), shared within the graph. */
  public String ints(long... values) {
    return constCache.computeIfAbsent(
        "i" + Arrays.toString(values),
        k -> {
          String n = fresh("ints");
          inits.put(
              n,
              new Init(n, DataType.INT64, new long[] {values.length}, null, values.clone(), false));
          return n;
        });
  }

  // ---------------------------------------------------------------- generic ops

  /** A node with one output. Empty strings stand for omitted optional inputs. */
  public String op(String opType, List<String> in, AttributeProto... attrs) {
    return opN(opType, in, 1, attrs)[0];
  }

  /** A node with {@code nOut} outputs. */
  public String[] opN(String opType, List<String> in, int nOut, AttributeProto... attrs) {
    String[] out = new String[nOut];
    NodeProto.Builder n =
        NodeProto.newBuilder().setOpType(opType).setName(fresh(opType.toLowerCase()));
    for (String i : in) {
      n.addInput(i);
    }
    for (int k = 0; k < nOut; k++) {
      out[k] = fresh(opType.toLowerCase() + "_out");
      n.addOutput(out[k]);
    }
    for (AttributeProto a : attrs) {
      n.addAttribute(a);
    }
    nodes.add(n);
    return out;
  }

  // ---------------------------------------------------------------- elementwise / math

  public String add(String a, String b) {
    return op("Add", List.of(a, b));
  }

  public String sub(String a, String b) {
    return op("Sub", List.of(a, b));
  }

  public String mul(String a, String b) {
    return op("Mul", List.of(a, b));
  }

  public String div(String a, String b) {
    return op("Div", List.of(a, b));
  }

  public String pow(String a, String b) {
    return op("Pow", List.of(a, b));
  }

  public String sqrt(String a) {
    return op("Sqrt", List.of(a));
  }

  public String neg(String a) {
    return op("Neg", List.of(a));
  }

  public String exp(String a) {
    return op("Exp", List.of(a));
  }

  public String sigmoid(String a) {
    return op("Sigmoid", List.of(a));
  }

  public String tanh(String a) {
    return op("Tanh", List.of(a));
  }

  public String erf(String a) {
    return op("Erf", List.of(a));
  }

  public String cos(String a) {
    return op("Cos", List.of(a));
  }

  public String sin(String a) {
    return op("Sin", List.of(a));
  }

  public String matMul(String a, String b) {
    return op("MatMul", List.of(a, b));
  }

  /**
   * {@code x @ wT (+ bias)}: a Linear layer with the weight stored transposed, {@code [in, out]}.
   */
  public String linear(String x, String wT, String biasOrNull) {
    String y = matMul(x, wT);
    return biasOrNull == null ? y : add(y, biasOrNull);
  }

  public String softmax(String x, int axis) {
    return op("Softmax", List.of(x), Attr.i("axis", axis));
  }

  public String reduceMean(String x, boolean keepDims, long... axes) {
    return op(
        "ReduceMean", List.of(x), Attr.ints("axes", axes), Attr.i("keepdims", keepDims ? 1 : 0));
  }

  public String cast(String x, DataType to) {
    return op("Cast", List.of(x), Attr.i("to", to.getNumber()));
  }

  // ---------------------------------------------------------------- shape ops

  public String reshape(String x, long... shape) {
    return op("Reshape", List.of(x, ints(shape)));
  }

  public String transpose(String x, long... perm) {
    return op("Transpose", List.of(x), Attr.ints("perm", perm));
  }

  public String concat(int axis, String... xs) {
    return op("Concat", List.of(xs), Attr.i("axis", axis));
  }

  public String unsqueeze(String x, long... axes) {
    return op("Unsqueeze", List.of(x, ints(axes)));
  }

  public String squeeze(String x, long... axes) {
    return op("Squeeze", List.of(x, ints(axes)));
  }

  /** Numpy-style broadcast to {@code shape} (1 keeps the input's dim). */
  public String expand(String x, long... shape) {
    return op("Expand", List.of(x, ints(shape)));
  }

  public String slice(String x, long[] starts, long[] ends, long[] axes) {
    return op("Slice", List.of(x, ints(starts), ints(ends), ints(axes)));
  }

  /** Splits along {@code axis} into parts of the given sizes. */
  public String[] split(String x, int axis, long... sizes) {
    return opN("Split", List.of(x, ints(sizes)), sizes.length, Attr.i("axis", axis));
  }

  public String gather(String data, String indices, int axis) {
    return op("Gather", List.of(data, indices), Attr.i("axis", axis));
  }

  public String shape(String x) {
    return op("Shape", List.of(x));
  }

  public String identity(String x) {
    return op("Identity", List.of(x));
  }

  // ---------------------------------------------------------------- NN ops

  /** LayerNormalization over the last axis (opset 17). */
  public String layerNorm(String x, String scale, String bias, float eps) {
    return op(
        "LayerNormalization", List.of(x, scale, bias), Attr.i("axis", -1), Attr.f("epsilon", eps));
  }

  /** Conv with square stride and symmetric padding. */
  public String conv(String x, String w, String biasOrNull, long stride, long pad) {
    List<String> in = biasOrNull == null ? List.of(x, w) : List.of(x, w, biasOrNull);
    return op(
        "Conv", in, Attr.ints("strides", stride, stride), Attr.ints("pads", pad, pad, pad, pad));
  }

  /**
   * RMSNorm as Hugging Face Llama computes it, {@code w * x / sqrt(mean(x^2) + eps)}, written as
   * the Pow/ReduceMean/Add/Sqrt/Div/Mul pattern ONNX Runtime fuses into one kernel.
   */
  public String rmsNorm(String x, String weight, double eps) {
    String var = reduceMean(pow(x, scalar(2f)), true, -1);
    String denom = sqrt(add(var, scalar((float) eps)));
    return mul(div(x, denom), weight);
  }

  /** {@code x * sigmoid(x)}. */
  public String silu(String x) {
    return mul(x, sigmoid(x));
  }

  /** Exact GELU, {@code 0.5 x (1 + erf(x / sqrt 2))}. */
  public String gelu(String x) {
    String e = erf(div(x, scalar((float) Math.sqrt(2))));
    return mul(mul(x, scalar(0.5f)), add(e, scalar(1f)));
  }

  // ---------------------------------------------------------------- output

  /** The model with every weight inline (for tests and small graphs). */
  public ModelProto toModel() {
    return toModel(null);
  }

  /**
   * The model; with {@code external} non-null, float weights of at least {@link #INLINE_BYTES} are
   * written to (or found in) that file and referenced from the graph.
   */
  public ModelProto toModel(ExternalWeights external) {
    GraphProto.Builder gb = GraphProto.newBuilder().setName(name);
    gb.addAllInput(inputs);
    gb.addAllOutput(outputs);
    for (NodeProto.Builder n : nodes) {
      NodeProto.Builder copy = n.clone();
      for (int i = 0; i < copy.getInputCount(); i++) {
        String r = renames.get(copy.getInput(i));
        if (r != null) {
          copy.setInput(i, r);
        }
      }
      for (int i = 0; i < copy.getOutputCount(); i++) {
        String r = renames.get(copy.getOutput(i));
        if (r != null) {
          copy.setOutput(i, r);
        }
      }
      gb.addNode(copy);
    }
    for (Init init : inits.values()) {
      gb.addInitializer(tensor(init, external));
    }
    return ModelProto.newBuilder()
        .setIrVersion(IR_VERSION)
        .setProducerName("tokenpress")
        .setProducerVersion("0.1")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
        .setGraph(gb)
        .build();
  }

  /** Serialized model with inline weights. */
  public byte[] toBytes() {
    return toModel(null).toByteArray();
  }

  /**
   * Writes the model file; weights go to {@code external} when given (see {@link
   * #toModel(ExternalWeights)}).
   */
  public void write(Path path, ExternalWeights external) {
    ModelProto m = toModel(external);
    long size = m.getSerializedSize();
    if (size >= Integer.MAX_VALUE) {
      throw new IllegalStateException(
          "graph "
              + name
              + " serializes to "
              + size
              + " bytes, over the 2 GB protobuf limit: write it with external weights");
    }
    try (OutputStream out = Files.newOutputStream(path)) {
      m.writeTo(out);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path, e);
    }
  }

  private TensorProto tensor(Init init, ExternalWeights external) {
    TensorProto.Builder t =
        TensorProto.newBuilder().setName(init.name).setDataType(init.type.getNumber());
    for (long d : init.dims) {
      t.addDims(d);
    }
    long n = init.elements();
    if (init.type == DataType.INT64) {
      ByteBuffer b = ByteBuffer.allocate(init.longs.length * 8).order(ByteOrder.LITTLE_ENDIAN);
      for (long v : init.longs) {
        b.putLong(v);
      }
      return t.setRawData(ByteString.copyFrom(b.array())).build();
    }
    if (external != null && init.externalizable && n * 4 >= INLINE_BYTES) {
      ExternalWeights.Location loc = external.put(init.name, n, () -> checked(init));
      t.setDataLocation(TensorProto.DataLocation.EXTERNAL);
      t.addExternalData(entry("location", loc.file()));
      t.addExternalData(entry("offset", Long.toString(loc.offset())));
      t.addExternalData(entry("length", Long.toString(loc.length())));
      return t.build();
    }
    float[] data = checked(init);
    ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(data);
    return t.setRawData(ByteString.copyFrom(b)).build();
  }

  private static float[] checked(Init init) {
    float[] data = init.floats.get();
    if (data.length != init.elements()) {
      throw new IllegalArgumentException(
          "weight "
              + init.name
              + " has "
              + data.length
              + " values, its dims "
              + Arrays.toString(init.dims)
              + " need "
              + init.elements());
    }
    return data;
  }

  private static StringStringEntryProto entry(String k, String v) {
    return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
  }

  private static ValueInfoProto valueInfo(String n, DataType type, Object... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (Object d : dims) {
      TensorShapeProto.Dimension.Builder db = TensorShapeProto.Dimension.newBuilder();
      if (d instanceof Number) {
        db.setDimValue(((Number) d).longValue());
      } else if (d instanceof String) {
        db.setDimParam((String) d);
      } else if (d != null) {
        throw new IllegalArgumentException(
            "dim of " + n + " must be a number, a name or null, found " + d);
      }
      shape.addDim(db);
    }
    TypeProto.Tensor.Builder tt =
        TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape);
    return ValueInfoProto.newBuilder()
        .setName(n)
        .setType(TypeProto.newBuilder().setTensorType(tt))
        .build();
  }

  private void claim(String n) {
    if (!names.add(n)) {
      throw new IllegalArgumentException("name " + n + " is already used in graph " + name);
    }
  }

  private String fresh(String prefix) {
    String n;
    do {
      n = prefix + "_" + counter++;
    } while (names.contains(n));
    names.add(n);
    return n;
  }
}
