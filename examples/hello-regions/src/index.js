// The example function: says hello from the region it runs in.
exports.handler = async (event) => ({
  statusCode: 200,
  body: JSON.stringify({ message: `${process.env.GREETING || "hello"} from ${process.env.AWS_REGION}`, input: event }),
});
