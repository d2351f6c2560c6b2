package dev.tokenpress.spark;

import java.util.Objects;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.util.hash.ArrowBufHasher;
import org.apache.arrow.vector.ExtensionTypeVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.ExtensionTypeRegistry;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;

/**
 * Arrow's canonical extension type {@code arrow.variable_shape_tensor} for float32 tensors of a
 * fixed rank: storage {@code struct<data: list<float32>, shape: fixed_size_list<int32>[ndim]>},
 * metadata {@code {"dim_names": [...]}}. PyArrow (and any Arrow implementation that knows the
 * canonical type) reads such a column as tensors; others see the storage struct with the extension
 * name and metadata on the field.
 */
public final class VariableShapeTensorType extends ArrowType.ExtensionType {
  public static final String NAME = "arrow.variable_shape_tensor";
  private final java.util.List<String> dimNames;

  public VariableShapeTensorType(java.util.List<String> dimNames) {
    this.dimNames = java.util.List.copyOf(dimNames);
  }

  /** Registers the type for Arrow readers in this JVM (idempotent). */
  public static void register() {
    if (ExtensionTypeRegistry.lookup(NAME) == null) {
      ExtensionTypeRegistry.register(new VariableShapeTensorType(java.util.List.of()));
    }
  }

  public int rank() {
    return dimNames.size();
  }

  public java.util.List<String> dimNames() {
    return dimNames;
  }

  /** The extension field with its storage children. */
  public Field field(String name) {
    Field data =
        new Field(
            "data",
            FieldType.notNullable(ArrowType.List.INSTANCE),
            java.util.List.of(
                new Field(
                    "item",
                    FieldType.notNullable(
                        new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE)),
                    null)));
    Field shape =
        new Field(
            "shape",
            FieldType.notNullable(new ArrowType.FixedSizeList(rank())),
            java.util.List.of(
                new Field("item", FieldType.notNullable(new ArrowType.Int(32, true)), null)));
    return new Field(name, FieldType.notNullable(this), java.util.List.of(data, shape));
  }

  @Override
  public ArrowType storageType() {
    return ArrowType.Struct.INSTANCE;
  }

  @Override
  public String extensionName() {
    return NAME;
  }

  @Override
  public boolean extensionEquals(ExtensionType other) {
    return other instanceof VariableShapeTensorType t && t.dimNames.equals(dimNames);
  }

  @Override
  public String serialize() {
    StringBuilder sb = new StringBuilder("{\"dim_names\":[");
    for (int i = 0; i < dimNames.size(); i++) {
      sb.append(i == 0 ? "" : ",")
          .append('"')
          .append(dimNames.get(i).replace("\"", ""))
          .append('"');
    }
    return sb.append("]}").toString();
  }

  @Override
  public ArrowType deserialize(ArrowType storageType, String serializedData) {
    if (!(storageType instanceof ArrowType.Struct)) {
      throw new IllegalArgumentException(NAME + " needs struct storage, got " + storageType);
    }
    int open = serializedData.indexOf('[');
    int close = serializedData.indexOf(']', Math.max(open, 0));
    java.util.List<String> names = java.util.List.of();
    if (serializedData.contains("dim_names") && open >= 0 && close > open) {
      String inner = serializedData.substring(open + 1, close).trim();
      names =
          inner.isEmpty()
              ? java.util.List.of()
              : java.util.Arrays.stream(inner.split(","))
                  .map(s -> s.trim().replace("\"", ""))
                  .toList();
    }
    return new VariableShapeTensorType(names);
  }

  @Override
  public FieldVector getNewVector(String name, FieldType fieldType, BufferAllocator allocator) {
    return new Vector(
        name,
        allocator,
        new StructVector(
            name,
            allocator,
            new FieldType(fieldType.isNullable(), ArrowType.Struct.INSTANCE, null, null),
            null));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof VariableShapeTensorType t && t.dimNames.equals(dimNames);
  }

  @Override
  public int hashCode() {
    return Objects.hash(NAME, dimNames);
  }

  /** The column vector: the storage struct behind the extension type. */
  public static final class Vector extends ExtensionTypeVector<StructVector> {
    Vector(String name, BufferAllocator allocator, StructVector storage) {
      super(name, allocator, storage);
    }

    @Override
    public Object getObject(int index) {
      return getUnderlyingVector().getObject(index);
    }

    @Override
    public int hashCode(int index) {
      return getUnderlyingVector().hashCode(index);
    }

    @Override
    public int hashCode(int index, ArrowBufHasher hasher) {
      return getUnderlyingVector().hashCode(index, hasher);
    }
  }
}
