// Preloaded into the Portkey gateway (node --require) by bench/run.sh: the gateway listens on all
// interfaces by default, and the benchmark binds nothing beyond 127.0.0.1.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === 'string') {
      args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (args[0] !== null && typeof args[0] === 'object' && !(args[0] instanceof net.Server)) {
    // listen(options[, callback])
    if (args[0].path === undefined && args[0].fd === undefined && args[0]._handle === undefined) {
      args[0] = { ...args[0], host: '127.0.0.1' };
    }
  }
  return listen.apply(this, args);
};
