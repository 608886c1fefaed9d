(ns music-topos.parallel-color-fork
  "Forward-Forward color learning for music-topos, the seed card's API, with every number computed by ff-mcp's torch engine.

  A layer here is a plain map that names a model in the engine; `forward`, `compute-goodness` and
  `local-update` describe the card's steps and the engine carries them out (ff_color_learn trains
  the layer and measures goodness in one call, ff_color_score runs a trained layer forward).
  Colors are \"#RRGGBB\" / \"RRGGBB\" strings or [r g b] (ints 0-255, or doubles 0-1).
  Options pick the transport (see ff-mcp.bridge/engine): in-process under `ff-mcp repl`, stdio MCP otherwise."
  (:require [ff-mcp.bridge :as bridge]
            [ff-mcp.colors :as colors]))

(def defaults
  "Options of `make-ff-layer` and `ff-color-learning`. :epochs nil means the engine's default (100)."
  {:seed colors/GAY-SEED   ; one seed for the weights, the shuffles and drawn negatives
   :hidden 16              ; the card's (make-ff-layer 3 16)
   :epochs nil
   :transport :auto})

(def max-hidden
  "The widest layer the engine builds."
  1024)

;; ---- input checks (the engine checks again; these give the same message on either transport) ----

(defn- check-color
  [field position color]
  (try
    (colors/parse-color color)
    (catch clojure.lang.ExceptionInfo e
      (throw (ex-info (str field "[" position "]: " (ex-message e))
                      (assoc (ex-data e) :type :ff-mcp/bad-color :field field :position position)))))
  (if (string? color) color (mapv #(if (integer? %) (long %) (double %)) color)))

(defn- check-colors
  "Returns `xs` as a vector of colors for the engine, or throws ex-info naming `field`."
  [field xs]
  (when-not (and (sequential? xs) (seq xs))
    (throw (ex-info (str field " must be a non-empty sequence of colors (\"#RRGGBB\" or [r g b]), got "
                         (pr-str xs))
                    {:type :ff-mcp/bad-color :field field :value xs})))
  (vec (map-indexed #(check-color field %1 %2) xs)))

(defn- check-int
  [field x low high]
  (when-not (and (integer? x) (<= low x high))
    (throw (ex-info (str field " must be an integer in [" low ", " high "], got " (pr-str x))
                    {:type :ff-mcp/bad-option :field (keyword field) :value x})))
  (long x))

(defn- model-name
  "Returns a registry name that is the same for the same inputs, so a rerun replaces an identical model."
  [layer positive negative]
  (format "music-topos-%08x"
          (hash [positive negative (:seed layer) (:out layer) (:epochs layer)])))

(defn- options
  [opts]
  (merge defaults (into {} (remove (comp nil? val)) opts)))

;; ---- the card's API ----------------------------------------------------------------------------

(defn make-ff-layer
  "Returns a new, untrained FF layer `in` -> `out` as a map: {:in :out :seed :epochs :transport :model nil}.

  `in` must be 3 (a color's r, g, b). Options: :seed, :epochs, :transport, :name (the model name
  to train into; default derived from the inputs), plus :command etc. for a stdio transport."
  [in out & {:as opts}]
  (when-not (= 3 in)
    (throw (ex-info (str "a color layer reads r, g, b: in must be 3, got " (pr-str in))
                    {:type :ff-mcp/bad-option :field :in :value in})))
  (let [opts (options opts)]
    (check-int "seed" (:seed opts) 0 Long/MAX_VALUE)
    (when-let [epochs (:epochs opts)] (check-int "epochs" epochs 1 10000))
    (merge (dissoc opts :hidden)
           {:in 3 :out (check-int "out" out 1 max-hidden) :model nil})))

(defn forward
  "Returns the layer's activations on `colors`: {:layer :colors :goodness :p-positive}.

  A trained layer (one returned by `local-update`) is run by the engine: :goodness is each color's
  goodness (sum of squared activities) and :p-positive its sigmoid(goodness - threshold).
  An untrained layer has no weights outside the engine yet, so both are nil and the colors wait
  for `local-update`, which trains and measures in one engine call."
  [layer colors]
  (let [xs (check-colors "colors" colors)]
    (if-let [model (:model layer)]
      (let [{:keys [scores goodness]} (bridge/call layer "ff_color_score" {:model model :colors xs})]
        {:layer layer :colors xs :goodness goodness :p-positive scores})
      {:layer layer :colors xs :goodness nil :p-positive nil})))

(defn compute-goodness
  "Returns {:colors :goodness} of `forward`'s activations; :goodness is nil before the layer is trained."
  [activations]
  (select-keys activations [:colors :goodness]))

(defn- learn-arguments
  [layer goodness-pos goodness-neg]
  (let [positive (:colors goodness-pos)
        negative (:colors goodness-neg)]
    (cond-> {:name (or (:name layer) (model-name layer positive negative))
             :positive positive
             :seed (:seed layer)
             :hidden (:out layer)}
      negative (assoc :negative negative)
      (:epochs layer) (assoc :epochs (:epochs layer)))))

(defn local-update
  "Returns {:layer :goodness-pos :goodness-neg :margin :accuracy :negatives :negatives-drawn} after training.

  The engine trains the layer with FF's local rule (Hinton 2022): goodness up for the colors of
  `goodness-pos`, down for those of `goodness-neg`. A nil `goodness-neg` lets the engine draw
  negatives of the opposite trit from the color stream. :layer is the trained layer (:model set);
  the goodness vectors are the trained layer's, one per color in input order."
  [layer goodness-pos goodness-neg]
  (let [args (learn-arguments layer goodness-pos goodness-neg)
        r (bridge/call layer "ff_color_learn" args)]
    {:layer (assoc layer :model (:model r) :name (:name args))
     :goodness-pos (vec (:goodness-pos r))
     :goodness-neg (vec (:goodness-neg r))
     :margin (:margin r)
     :accuracy (:accuracy r)
     :negatives (vec (:negatives r))
     :negatives-drawn (boolean (:negatives-drawn r))}))

(defn ff-color-learning
  "Returns {:layer :goodness-pos :goodness-neg :margin :accuracy ...}: one FF layer (3 -> :hidden) learnt
  to give `positive-colors` high goodness and `negative-colors` low goodness.

  `negative-colors` nil draws negatives from the color stream. Options: :seed (1069), :hidden (16),
  :epochs (engine default 100), :transport (:auto, :in-process, :stdio or an Engine), :command."
  [positive-colors negative-colors & {:as opts}]
  (let [opts (options opts)
        positive (check-colors "positive-colors" positive-colors)
        negative (some->> negative-colors (check-colors "negative-colors"))
        ff-layer (make-ff-layer 3 (:hidden opts) opts)
        goodness-pos (compute-goodness (forward ff-layer positive))
        goodness-neg (some->> negative (forward ff-layer) compute-goodness)]
    (local-update ff-layer goodness-pos goodness-neg)))

(defn score-colors
  "Returns {:colors :goodness :p-positive} of a trained `layer` on `colors` (see `forward`)."
  [layer colors]
  (when-not (:model layer)
    (throw (ex-info "score-colors needs a trained layer (the :layer of ff-color-learning or local-update)"
                    {:type :ff-mcp/untrained :layer layer})))
  (dissoc (forward layer colors) :layer))
