package dev.tokenpress.runtime.vision;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A minimal ONNX graph writer over the {@code OnnxMl} protobuf classes (opset 17), enough for the
 * vision graphs. Names of intermediate values are generated; inputs, outputs and initializers keep
 * the names given. Not thread-safe; one instance per graph.
 */
final class MiniGraph {
  static final int OPSET = 17;

  private final GraphProto.Builder graph = GraphProto.newBuilder();
  private int next;

  MiniGraph(String name) {
    graph.setName(name);
  }

  /** Declares a float input; each dim is a {@code Long} (fixed) or a {@code String} (symbolic). */
  String input(String name, Object... dims) {
    graph.addInput(valueInfo(name, TensorProto.DataType.FLOAT, dims));
    return name;
  }

  /** Renames {@code value} to the output {@code name} (an Identity when they differ) and declares it. */
  void output(String value, String name, Object... dims) {
    if (!value.equals(name)) {
      graph.addNode(NodeProto.newBuilder().setOpType("Identity").addInput(value).addOutput(name).setName(name));
    }
    graph.addOutput(valueInfo(name, TensorProto.DataType.FLOAT, dims));
  }

  /** A float32 initializer, little-endian raw data. */
  String init(String name, float[] data, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(data);
    TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT.getNumber())
        .setRawData(ByteString.copyFrom(b.array()));
    for (long d : dims) {
      t.addDims(d);
    }
    checkCount(name, data.length, dims);
    graph.addInitializer(t);
    return name;
  }

  /** An int64 initializer. */
  String initLongs(String name, long[] data, long... dims) {
    TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64.getNumber());
    for (long v : data) {
      t.addInt64Data(v);
    }
    for (long d : dims) {
      t.addDims(d);
    }
    checkCount(name, data.length, dims);
    graph.addInitializer(t);
    return name;
  }

  /** A 1-D int64 constant. */
  String longs(long... values) {
    return initLongs(fresh("const"), values, values.length);
  }

  /** A scalar float constant. */
  String scalar(float v) {
    return init(fresh("const"), new float[] {v});
  }

  /** One-output node; {@code attrs} alternate name, value (Integer, Long, Float, Double, long[], int[], String). */
  String op(String opType, String[] inputs, Object... attrs) {
    return ops(opType, 1, inputs, attrs)[0];
  }

  String[] ops(String opType, int outputs, String[] inputs, Object... attrs) {
    NodeProto.Builder n = NodeProto.newBuilder().setOpType(opType).setName(fresh(opType));
    for (String in : inputs) {
      n.addInput(in);
    }
    String[] outs = new String[outputs];
    for (int i = 0; i < outputs; i++) {
      outs[i] = fresh(opType.toLowerCase(java.util.Locale.ROOT));
      n.addOutput(outs[i]);
    }
    for (int i = 0; i < attrs.length; i += 2) {
      n.addAttribute(attribute((String) attrs[i], attrs[i + 1]));
    }
    graph.addNode(n);
    return outs;
  }

  ModelProto model() {
    return ModelProto.newBuilder()
        .setIrVersion(8)
        .setProducerName("tokenpress")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
        .setGraph(graph)
        .build();
  }

  byte[] toBytes() {
    return model().toByteArray();
  }

  private String fresh(String prefix) {
    return prefix + "_" + (next++);
  }

  private static void checkCount(String name, int n, long[] dims) {
    long p = 1;
    for (long d : dims) {
      p *= d;
    }
    if (p != n) {
      throw new IllegalArgumentException("initializer " + name + " has " + n + " values for shape " + java.util.Arrays.toString(dims));
    }
  }

  private static AttributeProto attribute(String name, Object v) {
    AttributeProto.Builder a = AttributeProto.newBuilder().setName(name);
    if (v instanceof Integer || v instanceof Long) {
      a.setType(AttributeProto.AttributeType.INT).setI(((Number) v).longValue());
    } else if (v instanceof Float || v instanceof Double) {
      a.setType(AttributeProto.AttributeType.FLOAT).setF(((Number) v).floatValue());
    } else if (v instanceof long[] ls) {
      a.setType(AttributeProto.AttributeType.INTS);
      for (long l : ls) {
        a.addInts(l);
      }
    } else if (v instanceof int[] is) {
      a.setType(AttributeProto.AttributeType.INTS);
      for (int l : is) {
        a.addInts(l);
      }
    } else if (v instanceof String s) {
      a.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(s));
    } else {
      throw new IllegalArgumentException("unsupported attribute " + name + " of type " + v.getClass());
    }
    return a.build();
  }

  private static ValueInfoProto valueInfo(String name, TensorProto.DataType type, Object... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (Object d : dims) {
      if (d instanceof String s) {
        shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimParam(s));
      } else {
        shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(((Number) d).longValue()));
      }
    }
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(
            TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape)))
        .build();
  }
}
