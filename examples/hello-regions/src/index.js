// The example function: says hello from the region it runs in. The demo changes RELEASE for its
// second release, and plants a bug in the third.
const RELEASE = "1";

exports.handler = async (event) => {
  return {
    statusCode: 200,
    body: JSON.stringify({
      message: `${process.env.GREETING || "hello"} from ${process.env.AWS_REGION}`,
      release: RELEASE,
      input: event,
    }),
  };
};
