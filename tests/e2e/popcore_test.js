// Feiyun end-to-end checks through @alicloud/pop-core (V2 HMAC-SHA1; GET with query, POST with form body).
// Run by test_popcore.py against the session server, or by hand:
//   FEIYUN_ENDPOINT=127.0.0.1:PORT FEIYUN_ACCESS_KEY_ID=... FEIYUN_ACCESS_KEY_SECRET=... node --test popcore_test.js
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const RPCClient = require('@alicloud/pop-core').RPCClient;

const REGION = 'cn-local';
const endpoint = process.env.FEIYUN_ENDPOINT;
const accessKeyId = process.env.FEIYUN_ACCESS_KEY_ID;
const accessKeySecret = process.env.FEIYUN_ACCESS_KEY_SECRET;
if (!endpoint || !accessKeyId || !accessKeySecret) {
  console.error('set FEIYUN_ENDPOINT, FEIYUN_ACCESS_KEY_ID, FEIYUN_ACCESS_KEY_SECRET');
  process.exit(2);
}

function client(secret) {
  return new RPCClient({
    accessKeyId, accessKeySecret: secret || accessKeySecret,
    endpoint: 'http://' + endpoint, apiVersion: '2014-05-26',
  });
}
const OPTS_GET = { timeout: 60000 };
const OPTS_POST = { method: 'POST', timeout: 60000 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitStatus(c, ids, status, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const r = await c.request('DescribeInstances', { RegionId: REGION, InstanceIds: JSON.stringify(ids), PageSize: 100 }, OPTS_GET);
    last = r.Instances.Instance.map((i) => [i.InstanceId, i.Status]);
    if (last.length === ids.length && last.every(([, s]) => s === status)) return;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${status}: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

test('DescribeRegions with GET', async () => {
  const r = await client().request('DescribeRegions', {}, OPTS_GET);
  assert.equal(r.Code, undefined);
  assert.ok(r.RequestId);
  assert.deepEqual(r.Regions.Region.map((x) => x.RegionId), [REGION]);
});

test('DescribeImages with POST form body', async () => {
  const r = await client().request('DescribeImages', { RegionId: REGION }, OPTS_POST);
  assert.ok(r.Images.Image.some((i) => i.ImageId === 'feiyun_busybox_x64'));
});

test('RunInstances (POST, Tag, UserData) -> Describe -> Stop -> Delete(Force)', async () => {
  const c = client();
  const tagValue = "dev test!'()*-" + Date.now();
  const marker = 'popcore-' + Date.now();
  const userData = Buffer.from(`#!/bin/sh\necho ${marker}\n`).toString('base64');
  const run = await c.request('RunInstances', {
    RegionId: REGION, ImageId: 'feiyun_busybox_x64', InstanceType: 'ecs.t5-lc2m1.nano', Amount: 2,
    HostName: 'popcore-host', Tag: [{ Key: 'popcore', Value: tagValue }], UserData: userData, DryRun: false,
  }, OPTS_POST);
  const ids = run.InstanceIdSets.InstanceIdSet;
  assert.equal(ids.length, 2);
  try {
    await waitStatus(c, ids, 'Running');
    // Filter by the tag with its special characters, GET this time.
    const d = await c.request('DescribeInstances', { RegionId: REGION, Tag: [{ Key: 'popcore', Value: tagValue }] }, OPTS_GET);
    assert.equal(d.TotalCount, 2);
    assert.deepEqual(d.Instances.Instance.map((i) => i.InstanceId).sort(), [...ids].sort());
    for (const i of d.Instances.Instance) {
      assert.equal(i.HostName, 'popcore-host');
      assert.equal(i.Memory, 512);
      // json-bigint builds null-prototype objects: compare plain copies.
      assert.deepEqual(JSON.parse(JSON.stringify(i.Tags.Tag)), [{ TagKey: 'popcore', TagValue: tagValue }]);
    }
    // Console output shows the UserData run.
    const deadline = Date.now() + 30000;
    for (;;) {
      const con = await c.request('GetInstanceConsoleOutput', { RegionId: REGION, InstanceId: ids[0] }, OPTS_POST);
      if (Buffer.from(con.ConsoleOutput || '', 'base64').toString().includes(marker)) break;
      if (Date.now() > deadline) throw new Error('UserData output not in console');
      await sleep(200);
    }
    const stop = await c.request('StopInstances', { RegionId: REGION, InstanceId: ids }, OPTS_POST);
    assert.equal(stop.InstanceResponses.InstanceResponse.length, 2);
    await waitStatus(c, ids, 'Stopped');
  } finally {
    await c.request('DeleteInstances', { RegionId: REGION, InstanceId: ids, Force: true }, OPTS_POST);
  }
  const deadline = Date.now() + 60000;
  for (;;) {
    const d = await c.request('DescribeInstances', { RegionId: REGION, InstanceIds: JSON.stringify(ids) }, OPTS_GET);
    if (d.Instances.Instance.length === 0) break;
    if (Date.now() > deadline) throw new Error('instances not gone');
    await sleep(100);
  }
});

test('errors are thrown as <Code>Error', async () => {
  await assert.rejects(
    client().request('StopInstance', { InstanceId: 'i-doesnotexist0000' }, OPTS_POST),
    (err) => {
      assert.equal(err.name, 'InvalidInstanceId.NotFoundError');
      assert.equal(err.code, 'InvalidInstanceId.NotFound');
      assert.ok(err.data.RequestId);
      return true;
    });
  await assert.rejects(
    client('wrong-secret').request('DescribeRegions', {}, OPTS_GET),
    (err) => { assert.equal(err.code, 'SignatureDoesNotMatch'); return true; });
  await assert.rejects(
    client().request('RunInstances', { RegionId: REGION, ImageId: 'feiyun_busybox_x64', InstanceType: 'ecs.gn7-c12g1.3xlarge' }, OPTS_POST),
    (err) => { assert.equal(err.code, 'OperationDenied.NoStock'); return true; });
});
