import protobuf from "protobufjs";

/**
 * The subset of ONNX's onnx.proto (IR version 8) that the exporter writes, as a protobufjs reflection
 * schema: field numbers and types as the ONNX specification defines them. protobufjs does the encoding.
 */
const f = (id: number, type: string, rule?: "repeated") => (rule ? { id, type, rule } : { id, type });
const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: f(1, "int64"),
            producer_name: f(2, "string"),
            producer_version: f(3, "string"),
            doc_string: f(6, "string"),
            graph: f(7, "GraphProto"),
            opset_import: f(8, "OperatorSetIdProto", "repeated"),
          },
        },
        OperatorSetIdProto: { fields: { domain: f(1, "string"), version: f(2, "int64") } },
        GraphProto: {
          fields: {
            node: f(1, "NodeProto", "repeated"),
            name: f(2, "string"),
            initializer: f(5, "TensorProto", "repeated"),
            input: f(11, "ValueInfoProto", "repeated"),
            output: f(12, "ValueInfoProto", "repeated"),
          },
        },
        NodeProto: {
          fields: {
            input: f(1, "string", "repeated"),
            output: f(2, "string", "repeated"),
            name: f(3, "string"),
            op_type: f(4, "string"),
            attribute: f(5, "AttributeProto", "repeated"),
          },
        },
        AttributeProto: {
          fields: {
            name: f(1, "string"),
            f: f(2, "float"),
            i: f(3, "int64"),
            s: f(4, "bytes"),
            t: f(5, "TensorProto"),
            g: f(6, "GraphProto"),
            floats: f(7, "float", "repeated"),
            ints: f(8, "int64", "repeated"),
            strings: f(9, "bytes", "repeated"),
            type: f(20, "int32"),
          },
        },
        TensorProto: {
          fields: {
            dims: f(1, "int64", "repeated"),
            data_type: f(2, "int32"),
            name: f(8, "string"),
            raw_data: f(9, "bytes"),
          },
        },
        ValueInfoProto: {
          fields: { name: f(1, "string"), type: f(2, "TypeProto"), doc_string: f(3, "string") },
        },
        TypeProto: { fields: { tensor_type: f(1, "TensorTypeProto") } },
        TensorTypeProto: { fields: { elem_type: f(1, "int32"), shape: f(2, "TensorShapeProto") } },
        TensorShapeProto: { fields: { dim: f(1, "Dimension", "repeated") } },
        Dimension: { fields: { dim_value: f(1, "int64"), dim_param: f(2, "string") } },
      },
    },
  },
};

export const ModelProto = protobuf.Root.fromJSON(SCHEMA).lookupType("onnx.ModelProto");

/** ONNX TensorProto.DataType codes and AttributeProto.AttributeType codes used here. */
export const DT = { float: 1, int32: 6, int64: 7, bool: 9 } as const;
export const AT = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
} as const;
