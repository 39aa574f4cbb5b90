// A real Bluesky PDS (@atproto/pds) and the PLC directory it needs (@did-plc/server), both on
// 127.0.0.1 only. Started by tests/peers/bluesky_pds.py, which sets the environment and reads
// the "READY" line; SIGTERM stops both.
'use strict'

const net = require('net')

// Neither server lets us choose the host it binds: force loopback for every listen() here.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    const port = args[0]
    const rest = args.slice(1).filter((a) => typeof a === 'function')
    return listen.call(this, { port, host: '127.0.0.1' }, ...rest)
  }
  if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}

const plc = require('@did-plc/server')
const pds = require('@atproto/pds')

async function main () {
  const plcPort = Number(process.env.RELAIS_PLC_PORT)
  const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: plcPort })
  await plcServer.start()

  const env = pds.readEnv()
  const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
  await server.start()
  process.stdout.write(`READY pds=${process.env.PDS_PORT} plc=${plcPort}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    try { await server.destroy() } catch (err) { console.error(err) }
    try { await plcServer.destroy() } catch (err) { console.error(err) }
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // If the test process dies without stopping us, do not linger.
  process.stdin.on('end', stop)
  process.stdin.resume()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
