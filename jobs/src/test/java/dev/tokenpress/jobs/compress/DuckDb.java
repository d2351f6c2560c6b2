package dev.tokenpress.jobs.compress;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** DuckDB over JDBC: the independent reader the tests check the Parquet output with. */
final class DuckDb implements AutoCloseable {
  private final Connection conn;

  DuckDb() {
    try {
      Class.forName("org.duckdb.DuckDBDriver");
      conn = DriverManager.getConnection("jdbc:duckdb:");
      try (Statement st = conn.createStatement()) {
        st.execute("SET threads TO 1");
      }
    } catch (SQLException | ClassNotFoundException e) {
      throw new IllegalStateException(e);
    }
  }

  /** All rows of {@code sql}, each as column name -> JDBC value. */
  List<Map<String, Object>> query(String sql) {
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery(sql)) {
      ResultSetMetaData md = rs.getMetaData();
      List<Map<String, Object>> rows = new ArrayList<>();
      while (rs.next()) {
        Map<String, Object> row = new LinkedHashMap<>();
        for (int i = 1; i <= md.getColumnCount(); i++) {
          Object v = rs.getObject(i);
          if (v instanceof java.sql.Array a) {
            v = a.getArray();
          } else if (v instanceof java.sql.Blob b) {
            v = b.getBytes(1, (int) b.length());
          }
          row.put(md.getColumnLabel(i), v);
        }
        rows.add(row);
      }
      return rows;
    } catch (SQLException e) {
      throw new IllegalStateException("duckdb: " + sql + ": " + e.getMessage(), e);
    }
  }

  long scalarLong(String sql) {
    return ((Number) query(sql).get(0).values().iterator().next()).longValue();
  }

  static String outputs(java.nio.file.Path root) {
    return "read_parquet('" + root.resolve("outputs") + "/*.parquet')";
  }

  static String kv(java.nio.file.Path root) {
    return "read_parquet('" + root.resolve("kv_cache") + "/*/*.parquet', hive_partitioning = true)";
  }

  @Override
  public void close() {
    try {
      conn.close();
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }
}
