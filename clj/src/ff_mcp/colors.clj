(ns ff-mcp.colors
  "SplitMix64, Gay.jl hash colors, trits and GF(3) triads, bit-identical to the Python ff_mcp.gf3."
  (:require [clojure.string :as str]))

;; Longs hold unsigned 64-bit values bit for bit; all arithmetic wraps, as Julia's UInt64 does.
(set! *unchecked-math* true)

(def ^:const GOLDEN (unchecked-long 0x9E3779B97F4A7C15))
(def ^:const MIX1 (unchecked-long 0xBF58476D1CE4E5B9))
(def ^:const MIX2 (unchecked-long 0x94D049BB133111EB))

(def GAY-SEED
  "Gay.jl's canonical seed since v0.4.0."
  1069)

(def max-count
  "Most colors one call to `colors` may return."
  10000)

(def ^:private two-64 (bigint 18446744073709551616N))

(defn- ->u64
  [field x]
  (when-not (and (integer? x) (<= 0 x) (< x two-64))
    (throw (ex-info (str field " must be an integer in [0, 2**64), got " (pr-str x))
                    {:field (keyword field) :value x})))
  (unchecked-long x))

(defn mix64
  "Returns the SplitMix64 finalizer of the 64 bits of `z`."
  ^long [^long z]
  (let [z (unchecked-multiply (bit-xor z (unsigned-bit-shift-right z 30)) MIX1)
        z (unchecked-multiply (bit-xor z (unsigned-bit-shift-right z 27)) MIX2)]
    (bit-xor z (unsigned-bit-shift-right z 31))))

(defn splitmix64
  "Returns Gay.jl's splitmix64 of `x`: add GOLDEN (wrapping), then mix."
  ^long [^long x]
  (mix64 (unchecked-add x GOLDEN)))

(defn splitmix-stream
  "Returns the lazy standard SplitMix64 stream from `seed` (state += GOLDEN, emit its mix)."
  [seed]
  (map mix64 (rest (iterate #(unchecked-add (long %) GOLDEN) (->u64 "seed" seed)))))

(defn unsigned
  "Returns the unsigned value of a 64-bit long as a BigInt (for printing and comparison)."
  [^long x]
  (bigint (Long/toUnsignedString x)))

(defn hash-color
  "Returns [r g b] bytes of color `index` for `seed`: the low three bytes of Gay.jl's hash."
  [seed index]
  (let [h (splitmix64 (bit-xor (->u64 "seed" seed)
                               (unchecked-multiply (->u64 "index" index) GOLDEN)))]
    [(bit-and h 0xFF)
     (bit-and (unsigned-bit-shift-right h 8) 0xFF)
     (bit-and (unsigned-bit-shift-right h 16) 0xFF)]))

(defn rgb->hex
  "Returns \"#RRGGBB\" (upper case) for [r g b] bytes."
  [[r g b]]
  (format "#%02X%02X%02X" r g b))

(defn hue-of
  "Returns the HSL hue in degrees, in [0, 360), of [r g b] bytes; grey has hue 0.0."
  [[r g b]]
  (let [hi (max r g b)
        spread (double (- hi (min r g b)))]
    (cond
      (zero? spread) 0.0
      (= hi r) (let [sector (/ (double (- g b)) spread)]
                 (if (neg? sector) (* 60.0 (+ sector 6.0)) (* 60.0 sector)))
      (= hi g) (* 60.0 (+ (/ (double (- b r)) spread) 2.0))
      :else (* 60.0 (+ (/ (double (- r g)) spread) 4.0)))))

(defn trit-from-hue
  "Returns +1 for hue in [0, 60) or [300, 360), 0 for [60, 180), -1 for [180, 300), mod 360."
  [hue]
  (when-not (and (number? hue) (Double/isFinite (double hue)))
    (throw (ex-info (str "hue must be a finite number of degrees, got " (pr-str hue)) {:value hue})))
  (let [h (mod (double hue) 360.0)]
    (cond
      (or (< h 60.0) (>= h 300.0)) 1
      (< h 180.0) 0
      :else -1)))

(def trit-colors
  "The skill cards' color per trit: HSL(0|120|240 deg, 70%, 50%)."
  {1 "#D82626", 0 "#26D826", -1 "#2626D8"})

(def trit-roles
  "Role name and description per trit."
  {1 {:role "PLUS" :description "generator"}
   0 {:role "ERGODIC" :description "coordinator"}
   -1 {:role "MINUS" :description "validator"}})

(defn color-at
  "Returns color `index` for `seed` as {:index :hex :r :g :b :hue :trit}."
  [seed index]
  (let [[r g b :as rgb] (hash-color seed index)
        hue (hue-of rgb)]
    {:index index :hex (rgb->hex rgb) :r r :g g :b b :hue hue :trit (trit-from-hue hue)}))

(defn colors
  "Returns the `count` colors with indices start, start + 1, ... for `seed`."
  [seed start count]
  (->u64 "seed" seed)
  (->u64 "start" start)
  (when-not (and (integer? count) (<= 0 count max-count))
    (throw (ex-info (str "count must be an integer in [0, " max-count "], got " (pr-str count))
                    {:field :count :value count})))
  (when (> (+' start count) two-64)
    (throw (ex-info "start + count must be <= 2**64" {:field :count :value count})))
  (mapv #(color-at seed %) (range start (+' start count))))

(defn- check-trit
  [t]
  (when-not (contains? #{-1 0 1} t)
    (throw (ex-info (str "trit must be -1, 0 or +1, got " (pr-str t)) {:value t})))
  t)

(defn sum-mod3
  "Returns the sum of `trits` (each -1, 0 or +1) mod 3, as 0, 1 or 2."
  [trits]
  (mod (reduce + 0 (map check-trit trits)) 3))

(defn balanced?
  "Returns true when `trits` sum to 0 mod 3."
  [trits]
  (zero? (sum-mod3 trits)))

(defn complete-triad
  "Returns the trit c in {-1 0 1} with a + b + c = 0 mod 3."
  [a b]
  (dec (mod (inc (- (sum-mod3 [a b]))) 3)))

(def ^:private allowed
  "'#RRGGBB', 'RRGGBB', or [r g b] of ints 0-255 or of doubles 0-1")

(defn- bad-color
  [message value]
  (throw (ex-info (str message "; got " (pr-str value)) {:value value :allowed allowed})))

(defn- parse-hex
  [s]
  (if-let [[_ r g b] (re-matches #"#?(\p{XDigit}{2})(\p{XDigit}{2})(\p{XDigit}{2})" s)]
    (mapv #(Long/parseLong % 16) [r g b])
    (bad-color (str "color must be " allowed " (hex needs exactly 6 hex digits)") s)))

(defn- parse-triple
  [v]
  (cond
    (not (and (sequential? v) (= 3 (count v)) (every? number? v)))
    (bad-color (str "color must be " allowed) v)
    (every? integer? v)
    (if (every? #(<= 0 % 255) v) (mapv long v) (bad-color "integer channels must be in [0, 255]" v))
    (every? #(<= 0.0 (double %) 1.0) v)
    (mapv #(long (Math/rint (* 255.0 (double %)))) v)
    :else (bad-color "a color with any double channel is read as 0-1 doubles, each in [0, 1]" v)))

(defn parse-color
  "Returns [r g b] bytes from \"#RRGGBB\", \"RRGGBB\" or [r g b] of ints 0-255 or doubles 0-1.

  If any channel is not an integer, all three are 0-1 fractions (rounded half to even, like Python).
  Bad input throws ex-info whose data holds the :value."
  [value]
  (if (string? value) (parse-hex value) (parse-triple value)))
