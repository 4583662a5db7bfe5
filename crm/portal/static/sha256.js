/* SHA-256 of a File, read slice by slice: `window.crmHashFile(file)` -> Promise of the
 * hex digest. Web Crypto only hashes a whole buffer at once, which for a 500 MB MRI study
 * would hold it all in memory; the resumable uploads (the patient's page, the agency
 * panel) declare this hash when they start, and the server checks the bytes it received
 * against it. Served by the app (no CDN).
 */
(function () {
  "use strict";
  var HASH_SLICE = 4 * 1024 * 1024;

  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  function Sha256() {
    this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Int32Array(64);
    this.tail = new Uint8Array(64);
    this.tailLength = 0;
    this.length = 0;
  }

  Sha256.prototype.blocks = function (bytes, start, end) {
    var w = this.w, h = this.h, a, b, c, d, e, f, g, k, i, j, x, y, t1, t2;
    for (var p = start; p < end; p += 64) {
      for (i = 0; i < 16; i++) {
        j = p + i * 4;
        w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
      }
      for (i = 16; i < 64; i++) {
        x = w[i - 15];
        y = w[i - 2];
        w[i] = (w[i - 16] + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
                w[i - 7] + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
      }
      a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
      for (i = 0; i < 64; i++) {
        t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
              ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
              ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
  };

  Sha256.prototype.update = function (bytes) {
    var start = 0;
    this.length += bytes.length;
    if (this.tailLength) {
      start = Math.min(64 - this.tailLength, bytes.length);
      this.tail.set(bytes.subarray(0, start), this.tailLength);
      this.tailLength += start;
      if (this.tailLength < 64) {
        return;
      }
      this.blocks(this.tail, 0, 64);
      this.tailLength = 0;
    }
    var whole = start + Math.floor((bytes.length - start) / 64) * 64;
    this.blocks(bytes, start, whole);
    this.tail.set(bytes.subarray(whole), 0);
    this.tailLength = bytes.length - whole;
  };

  Sha256.prototype.hex = function () {
    var tail = this.tail, n = this.tailLength, bits = this.length * 8, out = "", i;
    tail[n++] = 0x80;
    if (n > 56) {
      tail.fill(0, n);
      this.blocks(tail, 0, 64);
      n = 0;
    }
    tail.fill(0, n);
    var high = Math.floor(bits / 4294967296), low = bits >>> 0;
    for (i = 0; i < 4; i++) {
      tail[56 + i] = (high >>> (24 - 8 * i)) & 255;
      tail[60 + i] = (low >>> (24 - 8 * i)) & 255;
    }
    this.blocks(tail, 0, 64);
    for (i = 0; i < 8; i++) {
      out += ("00000000" + (this.h[i] >>> 0).toString(16)).slice(-8);
    }
    return out;
  };

  function hashFile(file) {
    var digest = new Sha256(), position = 0;
    function next() {
      if (position >= file.size) {
        return Promise.resolve(digest.hex());
      }
      var end = Math.min(position + HASH_SLICE, file.size);
      return file.slice(position, end).arrayBuffer().then(function (buffer) {
        digest.update(new Uint8Array(buffer));
        position = end;
        return next();
      });
    }
    return next();
  }

  window.crmHashFile = hashFile;
})();
