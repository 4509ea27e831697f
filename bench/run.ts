import { benchKernels } from './kernels';

// Entry of `npm run bench`: prints one JSON object with every benchmark's results.
const kernels = await benchKernels();
console.log(JSON.stringify({ kernels }, null, 2));
