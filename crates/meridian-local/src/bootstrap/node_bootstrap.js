// Meridian's Node.js runtime client: runs a handler behind the Lambda Runtime API.
// Built-in modules only. Supports async handlers and callback-style handlers.
"use strict";
const http = require("http");
const fs = require("fs");
const path = require("path");
const url = require("url");

const [HOST, PORT] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const PREFIX = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: Number(PORT), method, path: PREFIX + p, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

function errorBody(err, type) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: type || e.name || "Error",
    errorMessage: e.message,
    trace: (e.stack || "").split("\n"),
  };
}

function postError(p, body) {
  return call("POST", p, JSON.stringify(body), {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": body.errorType,
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER;
  const dot = spec.lastIndexOf(".");
  const modPath = path.resolve(process.env.LAMBDA_TASK_ROOT, spec.slice(0, dot));
  const fnName = spec.slice(dot + 1);
  let mod;
  const importError = (e) =>
    Object.assign(new Error(`Cannot load module '${spec.slice(0, dot)}': ${e.message}`), { name: "Runtime.ImportModuleError" });
  if (fs.existsSync(modPath + ".mjs")) {
    // An ES module handler, as Lambda's Node runtimes accept.
    mod = await import(url.pathToFileURL(modPath + ".mjs").href).catch((e) => {
      throw importError(e);
    });
  } else {
    try {
      mod = require(modPath);
    } catch (e) {
      if (e && e.code === "ERR_REQUIRE_ESM") {
        mod = await import(url.pathToFileURL(modPath + ".js").href).catch((e2) => {
          throw importError(e2);
        });
      } else {
        throw importError(e);
      }
    }
  }
  const fn = mod[fnName];
  if (typeof fn !== "function") {
    throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  }
  return fn;
}

function invokeHandler(fn, event, context) {
  return new Promise((resolve, reject) => {
    let done = false;
    const callback = (err, result) => {
      if (done) return;
      done = true;
      err ? reject(err) : resolve(result);
    };
    try {
      const r = fn(event, context, callback);
      if (r && typeof r.then === "function") {
        r.then((v) => callback(null, v), (e) => callback(e));
      } else if (fn.length < 3) {
        callback(null, r);
      }
    } catch (e) {
      callback(e);
    }
  });
}

async function main() {
  let fn;
  try {
    fn = await loadHandler();
  } catch (e) {
    const body = errorBody(e, e.name);
    console.error(`[ERROR] ${body.errorType}: ${body.errorMessage}`);
    await postError("/init/error", body);
    process.exit(1);
  }
  for (;;) {
    const { headers, body } = await call("GET", "/invocation/next");
    const requestId = headers["lambda-runtime-aws-request-id"];
    const deadline = Number(headers["lambda-runtime-deadline-ms"]);
    if (headers["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: headers["lambda-runtime-client-context"] ? JSON.parse(headers["lambda-runtime-client-context"]) : undefined,
      getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
      callbackWaitsForEmptyEventLoop: true,
    };
    try {
      const event = body.length ? JSON.parse(body.toString("utf8")) : null;
      const result = await invokeHandler(fn, event, context);
      const out = result === undefined ? "null" : JSON.stringify(result);
      await call("POST", `/invocation/${requestId}/response`, out, { "Content-Type": "application/json" });
    } catch (e) {
      const err = errorBody(e);
      console.error(`[ERROR] ${err.errorType}: ${err.errorMessage}`);
      await postError(`/invocation/${requestId}/error`, err);
    }
  }
}

main();
