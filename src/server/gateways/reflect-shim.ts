// Kept at its old path for importers outside the tunnel code; the shim lives with the CSR code
// both ends share.
import '../../protocol/reflect-shim.js';

export {};
