/** The cache's state key of the last window's record (`WindowRecord`), read by `attache status`. */
export const lastWindowKey = 'lastWindow';
