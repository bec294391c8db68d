/** A parameter's initialiser as the .cell file declares it (`~ xavier`, `= 0`): plain data. */
export type InitSpec =
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "uniform"; readonly lo?: number; readonly hi?: number }
  | { readonly kind: "normal"; readonly mean: number; readonly std: number }
  | { readonly kind: "xavier"; readonly gain: number }
  | { readonly kind: "orthogonal"; readonly gain: number };
