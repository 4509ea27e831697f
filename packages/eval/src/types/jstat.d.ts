// jstat 1.9.6 ships no types; only what stats.ts calls is declared (Student's t distribution).
declare module 'jstat' {
  const jStat: {
    studentt: {
      /** quantile: x with P(T <= x) = p for T ~ t(dof) */
      inv(p: number, dof: number): number;
      /** P(T <= x) for T ~ t(dof) */
      cdf(x: number, dof: number): number;
    };
  };
  export default jStat;
}
